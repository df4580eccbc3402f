"""The HubSpot adapter: CRM v3 batch upserts (100 a call), v4 associations, a shared rate limit.

owner -> contact (upsert by email; by id once known); property -> listing (object type a
setting, upsert by a unique property holding the website id); booking -> deal; enquiry -> deal
or lead (a setting); membership -> properties on the owner's contact; note and activity ->
notes on the owner's contact. Enquiries and bookings also upsert their guest as a contact.
Deals, leads and listings are associated to their contact and listing."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.providers.base import Action, Delivery, FailureKind, Outcome, Provider, ProviderError
from app.providers.hubspot import deletes, mapping
from app.providers.hubspot.client import HubSpotClient
from app.providers.ratelimit import RateLimiter
from app.records import Kind
from app.settings import HubSpotSettings

log = logging.getLogger(__name__)

CONTACTS = "contacts"
DEALS = "deals"
LEADS = "leads"
NOTES = "notes"
# HubSpot-defined association types used when creating an object with its associations.
NOTE_TO_CONTACT = 202
LEAD_TO_PRIMARY_CONTACT = 578


@dataclass(slots=True)
class Item:
    """One delivery on its way through the calls a kind needs."""

    delivery: Delivery
    trace: str  # objectWriteTraceId: how HubSpot names this input in results and errors
    crm_id: str | None = None
    action: Action = Action.upsert
    http_status: int | None = None
    request: Any = None
    response: Any = None
    error: ProviderError | None = None
    contact_id: str | None = None  # the guest's contact, for enquiries and bookings

    @property
    def live(self) -> bool:
        return self.error is None

    def fail(self, error: ProviderError) -> None:
        if self.error is None:
            self.error = error

    def outcome(self) -> Outcome:
        return Outcome(
            crm_id=self.crm_id,
            action=self.action,
            http_status=self.error.http_status if self.error else self.http_status,
            request=self.request,
            response=self.error.response if self.error and self.error.response else self.response,
            error=self.error,
        )


@dataclass(slots=True)
class Input:
    """One input of a batch call and the strings HubSpot may use to refer to it."""

    item: Item
    body: dict[str, Any]
    keys: set[str] = field(default_factory=set)


class HubSpotProvider(Provider):
    """Pushes records to HubSpot through a HubSpotClient (the pull reads through the same one)."""

    name = "hubspot"
    batch_size = 100  # HubSpot's batch endpoints take at most 100 inputs

    def __init__(
        self,
        settings: HubSpotSettings,
        limiter: RateLimiter,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        search_limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.client = HubSpotClient(
            settings, limiter, transport=transport, search_limiter=search_limiter
        )
        self.listing_type = settings.listing_object_type

    async def check(self) -> bool:
        return await self.client.check()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _request(
        self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.request(method, path, json=body, params=params)

    async def _batch(
        self, path: str, inputs: Sequence[Input], match: Callable[[dict[str, Any]], str | None]
    ) -> dict[str, dict[str, Any]]:
        """POST a batch; returns HubSpot's result object per input trace. Inputs HubSpot
        rejected are failed on their item, with HubSpot's message."""
        if not inputs:
            return {}
        for i in inputs:
            i.item.request = {"path": path, "input": i.body}
        response = await self._request("POST", path, {"inputs": [i.body for i in inputs]})
        return await self._read(path, inputs, match, response)

    async def _read(
        self,
        path: str,
        inputs: Sequence[Input],
        match: Callable[[dict[str, Any]], str | None],
        response: httpx.Response,
        parent_message: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        for i in inputs:
            i.item.request = {"path": path, "input": i.body}
        payload = _json(response)
        if response.status_code >= 400:
            return await self._refused(
                path, inputs, match, response.status_code, payload, parent_message
            )
        # 200, 201 or 207 multi-status: results and errors, each read for its own input.
        results: dict[str, dict[str, Any]] = {}
        by_key = _index(inputs)
        by_trace = {i.item.trace: i for i in inputs}
        unmatched: list[dict[str, Any]] = []
        for result in payload.get("results", []) or []:
            owner = by_trace.get(str(result.get("objectWriteTraceId")))
            if owner is None:
                key = match(result)
                owner = by_key.get(key.lower()) if key else None
            if owner is None:
                unmatched.append(result)
            else:
                results[owner.item.trace] = result
        waiting = [i for i in inputs if i.item.trace not in results]
        if len(unmatched) == 1 and len(waiting) == 1 and not payload.get("errors"):
            results[waiting[0].item.trace] = unmatched[0]  # the only answer for the only input
        for i in inputs:
            if i.item.trace in results:
                i.item.http_status = response.status_code
                i.item.response = results[i.item.trace]
        unexplained: list[str] = []
        for error in payload.get("errors", []) or []:
            named = _named(error, inputs)
            for i in named:
                if i.item.trace not in results:
                    i.item.fail(_record_error(error, response.status_code))
            if not named:
                unexplained.append(str(error.get("message", error)))
        for i in inputs:
            if i.item.trace not in results and i.item.live:
                reason = "; ".join(unexplained) or "HubSpot returned no result for this record"
                i.item.fail(
                    ProviderError(
                        FailureKind.transient,
                        f"HubSpot {response.status_code}: {reason}",
                        http_status=response.status_code,
                        response={"errors": unexplained} if unexplained else payload,
                    )
                )
        return results

    async def _refused(
        self,
        path: str,
        inputs: Sequence[Input],
        match: Callable[[dict[str, Any]], str | None],
        status: int,
        payload: dict[str, Any],
        parent_message: str | None,
    ) -> dict[str, dict[str, Any]]:
        """A whole batch refused (4xx): fail the inputs HubSpot names and resend the rest; if
        it names none, split the batch in two so one bad record cannot sink the others."""
        message = str(payload.get("message", ""))
        named = _named(payload, inputs)
        if len(inputs) == 1 or named or message == parent_message:
            # One input; or HubSpot named the culprits; or both halves of a split failed alike
            # (a problem with every input, like a property that does not exist).
            culprits = named or list(inputs)
            for i in culprits:
                i.item.fail(_record_error(payload, status))
            rest = [i for i in inputs if i not in culprits]
            return await self._batch(path, rest, match)
        half = len(inputs) // 2
        answers = []
        for part in (inputs[:half], inputs[half:]):
            answers.append(
                (part, await self._request("POST", path, {"inputs": [i.body for i in part]}))
            )
        # Both halves refused with the same message: a problem with every input. Otherwise the
        # refused half is split again until the record at fault is alone.
        alike = all(r.status_code >= 400 and _json(r).get("message") == message for _, r in answers)
        results: dict[str, dict[str, Any]] = {}
        for part, response in answers:
            results |= await self._read(path, part, match, response, message if alike else None)
        return results

    # -- delivering --------------------------------------------------------------------------

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        items = [Item(d, trace=str(d.job_id)) for d in deliveries]
        try:
            await self._deliver(kind, items)
        except ProviderError as exc:
            # A whole call failed (timeout, 429, 5xx, 401): each record still in play gets it,
            # with its own input for the sync log and any CRM id an earlier step gave it.
            for item in items:
                if item.live:
                    item.fail(
                        ProviderError(
                            exc.kind,
                            exc.message,
                            retry_after=exc.retry_after,
                            http_status=exc.http_status,
                            request=item.request,
                            response=exc.response,
                        )
                    )
        return [i.outcome() for i in items]

    async def delete(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Archive, or for an erasure GDPR-delete (see `deletes`)."""
        return await deletes.delete(self, kind, deliveries)

    async def _deliver(self, kind: Kind, items: list[Item]) -> None:
        match kind:
            case Kind.owner:
                await self._owners(items)
            case Kind.property:
                await self._listings(items)
            case Kind.booking:
                await self._deals(items, self.settings.booking_id_property, mapping.booking_deal)
            case Kind.enquiry if self.settings.enquiry_object == "lead":
                await self._leads(items)
            case Kind.enquiry:
                await self._deals(items, self.settings.enquiry_id_property, mapping.enquiry_deal)
            case Kind.membership:
                await self._memberships(items)
            case Kind.note | Kind.activity:
                await self._notes(items, activity=kind is Kind.activity)

    async def _owners(self, items: list[Item]) -> None:
        by_id, by_email = [], []
        for item in items:
            d = item.delivery
            props = mapping.contact(d.data, d.record_id)
            if d.crm_id:
                by_id.append(Input(item, _update(d.crm_id, props, item.trace), {d.crm_id}))
            elif props.get("email"):
                body = _upsert("email", props["email"], props, item.trace)
                by_email.append(Input(item, body, {props["email"]}))
            else:
                item.fail(_rejected("HubSpot upserts contacts by email: this owner has none"))
        await self._write(f"/crm/v3/objects/{CONTACTS}/batch/update", by_id, _by_id)
        for i in by_id:
            # The contact was deleted or merged away in HubSpot: find or make it by email.
            error, email = i.item.error, i.body["properties"].get("email")
            if error and email and (error.response or {}).get("category") == "OBJECT_NOT_FOUND":
                i.item.error = None
                body = _upsert("email", email, i.body["properties"], i.item.trace)
                by_email.append(Input(i.item, body, {email}))
        await self._write(
            f"/crm/v3/objects/{CONTACTS}/batch/upsert", by_email, _by_property("email")
        )

    async def _listings(self, items: list[Item]) -> None:
        prop = self.settings.listing_id_property
        inputs = []
        for item in items:
            d = item.delivery
            props = mapping.listing(d.data, prop, d.record_id)
            inputs.append(Input(item, _upsert(prop, d.record_id, props, item.trace), {d.record_id}))
        await self._write(
            f"/crm/v3/objects/{self.listing_type}/batch/upsert", inputs, _by_property(prop)
        )
        await self._associate(
            self.listing_type, CONTACTS, items, lambda i: i.delivery.parent_crm_id
        )

    async def _deals(
        self,
        items: list[Item],
        prop: str,
        to_props: Callable[[dict[str, Any], str, str, str], dict[str, str]],
    ) -> None:
        await self._guests(items)
        inputs = []
        for item in (i for i in items if i.live):
            d = item.delivery
            props = to_props(d.data, prop, d.record_id, self.settings.deal_pipeline)
            inputs.append(Input(item, _upsert(prop, d.record_id, props, item.trace), {d.record_id}))
        await self._write(f"/crm/v3/objects/{DEALS}/batch/upsert", inputs, _by_property(prop))
        await self._associate(DEALS, CONTACTS, items, lambda i: i.contact_id)
        await self._associate(DEALS, self.listing_type, items, lambda i: i.delivery.parent_crm_id)

    async def _leads(self, items: list[Item]) -> None:
        """Leads must be created with their contact, so no upsert: read by the website id,
        update those found, create the rest associated to the guest's contact."""
        prop = self.settings.enquiry_id_property
        await self._guests(items)
        for item in items:
            if item.live and item.contact_id is None:
                item.fail(
                    _rejected("a HubSpot lead needs a contact: this enquiry has no guestEmail")
                )
        live = [i for i in items if i.live]
        found: dict[str, str] = {}
        if live:
            body = {
                "idProperty": prop,
                "inputs": [{"id": i.delivery.record_id} for i in live],
                "properties": [prop],
                "propertiesWithHistory": [],
            }
            response = await self._request("POST", f"/crm/v3/objects/{LEADS}/batch/read", body)
            for result in _json(response).get("results", []) if response.is_success else []:
                website_id = (result.get("properties") or {}).get(prop)
                if website_id:
                    found[str(website_id)] = str(result["id"])
        updates, creates = [], []
        for item in live:
            d = item.delivery
            props = mapping.enquiry_lead(d.data, prop, d.record_id)
            lead_id = d.crm_id or found.get(d.record_id)
            if lead_id:
                updates.append(Input(item, _update(lead_id, props, item.trace), {lead_id}))
            else:
                association = _with(item.contact_id or "", LEAD_TO_PRIMARY_CONTACT)
                create = {"objectWriteTraceId": item.trace, "properties": props}
                creates.append(
                    Input(item, {**create, "associations": [association]}, {d.record_id})
                )
        await self._write(f"/crm/v3/objects/{LEADS}/batch/update", updates, _by_id)
        await self._write(f"/crm/v3/objects/{LEADS}/batch/create", creates, _by_property(prop))
        await self._associate(LEADS, self.listing_type, items, lambda i: i.delivery.parent_crm_id)

    async def _memberships(self, items: list[Item]) -> None:
        inputs = []
        for item in items:
            d = item.delivery
            contact_id = d.parent_crm_id or d.crm_id
            if not contact_id:
                item.fail(_rejected("the owner's HubSpot contact is not known yet"))
                continue
            props = mapping.membership(d.data)
            inputs.append(Input(item, _update(contact_id, props, item.trace), {contact_id}))
        await self._write(f"/crm/v3/objects/{CONTACTS}/batch/update", inputs, _by_id)
        for item in items:
            item.action = Action.update

    async def _notes(self, items: list[Item], *, activity: bool) -> None:
        updates, creates = [], []
        for item in items:
            d = item.delivery
            props = mapping.note(d.data, d.record_id, activity=activity)
            if d.crm_id:
                updates.append(Input(item, _update(d.crm_id, props, item.trace), {d.crm_id}))
            elif d.parent_crm_id:
                body: dict[str, Any] = {"objectWriteTraceId": item.trace, "properties": props}
                body["associations"] = [_with(d.parent_crm_id, NOTE_TO_CONTACT)]
                creates.append(Input(item, body, set()))
            else:
                item.fail(_rejected("the owner's HubSpot contact is not known yet"))
        await self._write(f"/crm/v3/objects/{NOTES}/batch/update", updates, _by_id)
        await self._write(f"/crm/v3/objects/{NOTES}/batch/create", creates, lambda r: None)
        for item in items:
            item.action = Action.note

    # -- steps shared by kinds ---------------------------------------------------------------

    async def _write(
        self, path: str, inputs: list[Input], match: Callable[[dict[str, Any]], str | None]
    ) -> None:
        """Send inputs in calls whose ids are unique (HubSpot refuses duplicate ids in one
        batch), and record each one's CRM id and action."""
        while inputs:
            seen: set[str] = set()
            now: list[Input] = []
            later: list[Input] = []
            for i in inputs:
                key = str(i.body.get("id", i.item.trace)).lower()
                (later if key in seen else now).append(i)
                seen.add(key)
            results = await self._batch(path, now, match)
            for i in now:
                result = results.get(i.item.trace)
                if result is None:
                    continue
                i.item.crm_id = str(result["id"])
                if "new" in result:
                    i.item.action = Action.create if result["new"] else Action.update
                elif path.endswith("/create"):
                    i.item.action = Action.create
                else:
                    i.item.action = Action.update
            inputs = later

    async def _guests(self, items: list[Item]) -> None:
        """Upsert each enquiry's or booking's guest as a contact, by email."""
        inputs = []
        for item in items:
            props = mapping.guest(item.delivery.data)
            if props:
                body = _upsert("email", props["email"], props, item.trace)
                inputs.append(Input(item, body, {props["email"]}))
        if not inputs:
            return
        await self._write(f"/crm/v3/objects/{CONTACTS}/batch/upsert", inputs, _by_property("email"))
        for i in inputs:
            i.item.contact_id, i.item.crm_id = i.item.crm_id, None
            i.item.action = Action.upsert

    async def _associate(
        self,
        from_type: str,
        to_type: str,
        items: list[Item],
        target: Callable[[Item], str | None],
    ) -> None:
        """Default (unlabelled) associations, v4; creating one that exists is a no-op."""
        pairs = [(i, target(i)) for i in items if i.live and i.crm_id and target(i)]
        if not pairs:
            return
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default"
        body = {"inputs": [{"from": {"id": i.crm_id}, "to": {"id": to}} for i, to in pairs]}
        try:
            response = await self._request("POST", path, body)
        except ProviderError as exc:
            for i, _ in pairs:
                i.fail(exc)
            return
        payload = _json(response)
        if response.status_code >= 400:
            for i, _ in pairs:
                i.fail(_record_error(payload, response.status_code))
            return
        for error in payload.get("errors", []) or []:
            for i, to in pairs:
                if _mentions(error, {str(i.crm_id), str(to)}):
                    i.fail(_record_error(error, response.status_code))


# -- request bodies and reading answers ------------------------------------------------------


def _upsert(id_property: str, value: str, props: dict[str, str], trace: str) -> dict[str, Any]:
    return {
        "idProperty": id_property,
        "id": value,
        "objectWriteTraceId": trace,
        "properties": props,
    }


def _update(crm_id: str, props: dict[str, str], trace: str) -> dict[str, Any]:
    return {"id": crm_id, "objectWriteTraceId": trace, "properties": props}


def _with(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _by_id(result: dict[str, Any]) -> str | None:
    return str(result["id"]) if result.get("id") is not None else None


def _by_property(name: str) -> Callable[[dict[str, Any]], str | None]:
    def match(result: dict[str, Any]) -> str | None:
        value = (result.get("properties") or {}).get(name)
        return str(value) if value is not None else None

    return match


def _index(inputs: Sequence[Input]) -> dict[str, Input]:
    found: dict[str, Input] = {}
    for i in inputs:
        for key in i.keys:
            found.setdefault(key.lower(), i)
    return found


def _mentions(error: dict[str, Any], keys: set[str]) -> bool:
    context = error.get("context") or {}
    values = {
        str(v).lower() for vs in context.values() for v in (vs if isinstance(vs, list) else [vs])
    }
    if {k.lower() for k in keys} & values:
        return True
    message = str(error.get("message", ""))
    return any(
        len(k) >= 3 and re.search(rf"(?<![\w@.+-]){re.escape(k)}(?![\w@.+-])", message, re.I)
        for k in keys
    )


def _named(error: dict[str, Any], inputs: Sequence[Input]) -> list[Input]:
    """The inputs an error refers to: by objectWriteTraceId or id in its context, or by a
    value (an email, a website id) its message quotes."""
    context = error.get("context") or {}
    traces = {str(v) for v in context.get("objectWriteTraceId", []) or []}
    by_trace = [i for i in inputs if i.item.trace in traces]
    return by_trace or [i for i in inputs if i.keys and _mentions(error, i.keys)]


def _record_error(error: dict[str, Any], status: int) -> ProviderError:
    category = str(error.get("category", ""))
    message = str(error.get("message", "")) or category or "rejected"
    if category == "RATE_LIMITS":
        return ProviderError(
            FailureKind.rate_limited, f"HubSpot: {message}", http_status=429, response=error
        )
    return ProviderError(
        FailureKind.rejected,
        f"HubSpot {category or status}: {message}",
        http_status=400 if status < 400 else status,
        response=error,
    )


def _rejected(message: str) -> ProviderError:
    return ProviderError(FailureKind.rejected, message)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except (json.JSONDecodeError, ValueError):
        return {"message": response.text[:500]}
    return payload if isinstance(payload, dict) else {"results": payload}
