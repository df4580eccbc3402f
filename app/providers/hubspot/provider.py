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
from app.providers.hubspot import deletes, mapping, properties, spec
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
    ) -> dict[str, dict[str, Any]]:
        for i in inputs:
            i.item.request = {"path": path, "input": i.body}
        payload = _json(response)
        if response.status_code >= 400:
            return await self._refused(path, inputs, match, response.status_code, payload)
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
    ) -> dict[str, dict[str, Any]]:
        """A whole batch refused (4xx). Good inputs never fail for a neighbour: fail the inputs
        the error names (by trace, id or key, or by the property and value it names) and
        resend the rest; if it names none, split the batch in two and read each half's answer
        alike, down to single inputs, so only a refused single input fails."""
        named = _named(payload, inputs) or _named_by_property(payload, inputs)
        if len(inputs) == 1 or named:
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
        results: dict[str, dict[str, Any]] = {}
        for part, response in answers:
            results |= await self._read(path, part, match, response)
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
        gone = await self._update_by_id(CONTACTS, by_id, _user_key)
        for i in gone:
            # The contact was deleted in HubSpot, and none holds its user id: make it by email.
            email = i.body["properties"].get("email")
            if email:
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
            self.listing_type,
            CONTACTS,
            items,
            lambda i: i.delivery.parent_crm_id,
            lambda i: _owner_key(i.delivery.data.get("ownerId")),
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
        await self._associate(
            DEALS,
            self.listing_type,
            items,
            lambda i: i.delivery.parent_crm_id,
            self._listing_key,
        )

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
        gone = await self._update_by_id(LEADS, updates, lambda i: (prop, i.item.delivery.record_id))
        for i in gone:
            i.item.error = None
            association = _with(i.item.contact_id or "", LEAD_TO_PRIMARY_CONTACT)
            create = {"objectWriteTraceId": i.item.trace, "properties": i.body["properties"]}
            creates.append(
                Input(
                    i.item, {**create, "associations": [association]}, {i.item.delivery.record_id}
                )
            )
        await self._write(f"/crm/v3/objects/{LEADS}/batch/create", creates, _by_property(prop))
        await self._associate(
            LEADS,
            self.listing_type,
            items,
            lambda i: i.delivery.parent_crm_id,
            self._listing_key,
        )

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
        gone = await self._update_by_id(CONTACTS, inputs, _user_key)
        # The owner's contact was deleted in HubSpot: make it again, by the owner's user id (the
        # owner's next change finds it by that id and fills in the rest).
        again = []
        for i in gone:
            key = _user_key(i)
            if key:
                i.item.error = None
                props = {**i.body["properties"], key[0]: key[1]}
                again.append(Input(i.item, _upsert(key[0], key[1], props, i.item.trace), {key[1]}))
        await self._write(
            f"/crm/v3/objects/{CONTACTS}/batch/upsert", again, _by_property(mapping.CONTACT_USER_ID)
        )
        for item in items:
            item.action = Action.update

    async def _notes(self, items: list[Item], *, activity: bool) -> None:
        """Notes have no upsert and batch/create has no idempotency: each note carries our id
        (properties.NOTE_ID), and before creating the notes whose HubSpot id we do not know we
        search for that id, so a create whose answer was lost is updated, not made twice."""
        updates, creates = [], []
        for item in items:
            d = item.delivery
            props = mapping.note(d.data, d.record_id, activity=activity)
            if d.crm_id:
                updates.append(Input(item, _update(d.crm_id, props, item.trace), {d.crm_id}))
            elif d.parent_crm_id:
                body: dict[str, Any] = {"objectWriteTraceId": item.trace, "properties": props}
                body["associations"] = [_with(d.parent_crm_id, NOTE_TO_CONTACT)]
                creates.append(Input(item, body, {props[properties.NOTE_ID]}))
            else:
                item.fail(_rejected("the owner's HubSpot contact is not known yet"))
        gone = await self._update_by_id(
            NOTES, updates, lambda i: (properties.NOTE_ID, i.body["properties"][properties.NOTE_ID])
        )
        for i in gone:  # deleted in HubSpot: made again on the owner's contact
            d = i.item.delivery
            if d.parent_crm_id:
                i.item.error = None
                body = {"objectWriteTraceId": i.item.trace, "properties": i.body["properties"]}
                body["associations"] = [_with(d.parent_crm_id, NOTE_TO_CONTACT)]
                creates.append(Input(i.item, body, {i.body["properties"][properties.NOTE_ID]}))
        existing = await self._lookup(
            NOTES, properties.NOTE_ID, [i.body["properties"][properties.NOTE_ID] for i in creates]
        )
        known = []
        for i in creates:
            found = existing.get(i.body["properties"][properties.NOTE_ID].lower())
            if found:
                known.append(Input(i.item, _update(found, i.body["properties"], i.item.trace)))
        taken = {id(k.item) for k in known}
        creates = [i for i in creates if id(i.item) not in taken]
        await self._write(f"/crm/v3/objects/{NOTES}/batch/update", known, _by_id)
        await self._write(
            f"/crm/v3/objects/{NOTES}/batch/create", creates, _by_property(properties.NOTE_ID)
        )
        await self._notes_on_moved_contacts(creates)
        for item in items:
            item.action = Action.note

    async def _notes_on_moved_contacts(self, creates: list[Input]) -> None:
        """Notes refused because their contact is gone under its stored id: find the contact
        again (a merge's survivor, or by the owner's user id) and create them there."""
        again = []
        for i in creates:
            d = i.item.delivery
            error = i.item.error
            if error is None or not d.parent_crm_id:
                continue
            if not (_gone(error) or _mentions(error.response or {}, {d.parent_crm_id})):
                continue
            found = await self._find_again(
                CONTACTS, d.parent_crm_id, _owner_key(d.data.get("ownerId"))
            )
            if found and found != d.parent_crm_id:
                i.item.error = None
                body = {**i.body, "associations": [_with(found, NOTE_TO_CONTACT)]}
                again.append(Input(i.item, body, i.keys))
        await self._write(
            f"/crm/v3/objects/{NOTES}/batch/create", again, _by_property(properties.NOTE_ID)
        )

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
        target_key: Callable[[Item], tuple[str, str] | None] = lambda i: None,
    ) -> None:
        """Default (unlabelled) associations, v4; creating one that exists is a no-op. A target
        HubSpot no longer has (deleted or merged) is found again by its stable key
        (`target_key`: unique property and value) and the association made to it."""
        pairs = [(i, target(i)) for i in items if i.live and i.crm_id and target(i)]
        refused = await self._associate_pairs(from_type, to_type, [(i, str(t)) for i, t in pairs])
        again = []
        for i, to in refused:
            found = await self._find_again(to_type, to, target_key(i))
            if found and found != to:
                i.error = None
                again.append((i, found))
        await self._associate_pairs(from_type, to_type, again)

    async def _associate_pairs(
        self, from_type: str, to_type: str, pairs: list[tuple[Item, str]]
    ) -> list[tuple[Item, str]]:
        """Associate each (item's object, target id); returns the pairs refused because an
        object was not found (their items failed with HubSpot's reason)."""
        if not pairs:
            return []
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default"
        body = {"inputs": [{"from": {"id": i.crm_id}, "to": {"id": to}} for i, to in pairs]}
        try:
            response = await self._request("POST", path, body)
        except ProviderError as exc:
            for i, _ in pairs:
                i.fail(exc)
            return []
        payload = _json(response)
        if response.status_code >= 400:
            for i, _ in pairs:
                i.fail(_record_error(payload, response.status_code))
            return []
        missing = []
        for error in payload.get("errors", []) or []:
            for i, to in pairs:
                if _mentions(error, {str(i.crm_id), str(to)}):
                    i.fail(_record_error(error, response.status_code))
                    if _mentions(error, {str(to)}):
                        missing.append((i, to))
        return missing

    # -- finding again an object HubSpot no longer has under a stored id ---------------------

    async def _update_by_id(
        self,
        object_type: str,
        inputs: list[Input],
        key: Callable[[Input], tuple[str, str] | None],
    ) -> list[Input]:
        """Batch update by stored CRM ids. An id HubSpot answers OBJECT_NOT_FOUND for is found
        again (a merge's survivor, else by `key`: unique property and value) and the update
        sent there, its new id recorded. Returns the inputs whose object is gone for good
        (failed with OBJECT_NOT_FOUND; the caller may make it again)."""
        path = f"/crm/v3/objects/{object_type}/batch/update"
        await self._write(path, inputs, _by_id)
        retry, gone = [], []
        for i in inputs:
            if not _gone(i.item.error):
                continue
            found = await self._find_again(object_type, str(i.body["id"]), key(i))
            if found is None:
                gone.append(i)
                continue
            i.item.error = None
            i.body = {**i.body, "id": found}
            i.keys = {found}
            retry.append(i)
        await self._write(path, retry, _by_id)
        return gone

    async def _find_again(
        self, object_type: str, crm_id: str, key: tuple[str, str] | None
    ) -> str | None:
        """The id of the object HubSpot keeps for `crm_id`: reading a merged-away id answers
        the surviving object; a deleted one is looked up by its stable key (a unique property
        read with `idProperty`, or our note id by search). None: not found."""
        path = f"/crm/v3/objects/{object_type}/{crm_id}"
        response = await self._request("GET", path, params={"properties": "hs_object_id"})
        if response.is_success:
            found = _json(response).get("id")
            if found is not None and str(found) != crm_id:
                return str(found)
        if key is None:
            return None
        found_ids = await self._lookup(object_type, key[0], [key[1]])
        return found_ids.get(key[1].lower())

    async def _lookup(self, object_type: str, prop: str, values: list[str]) -> dict[str, str]:
        """{value (lower case): object id} of the objects whose `prop` holds one of `values`:
        a batch read by `idProperty` for a unique property, a search otherwise (HubSpot's
        search index may lag a write by a few seconds)."""
        if not values:
            return {}
        if prop == properties.NOTE_ID:
            body: dict[str, Any] = {
                "filterGroups": [
                    {"filters": [{"propertyName": prop, "operator": "IN", "values": values}]}
                ],
                "properties": [prop],
                "limit": min(len(values), spec.SEARCH_LIMIT_MAX),
            }
            response = await self._request("POST", f"/crm/v3/objects/{object_type}/search", body)
        else:
            body = {
                "idProperty": prop,
                "inputs": [{"id": v} for v in values],
                "properties": [prop],
                "propertiesWithHistory": [],
            }
            path = f"/crm/v3/objects/{object_type}/batch/read"
            response = await self._request("POST", path, body)
        found: dict[str, str] = {}
        for result in _json(response).get("results", []) if response.is_success else []:
            value = (result.get("properties") or {}).get(prop)
            if value is not None and result.get("id") is not None:
                found.setdefault(str(value).lower(), str(result["id"]))
        return found

    def _listing_key(self, item: Item) -> tuple[str, str] | None:
        property_id = item.delivery.data.get("propertyId")
        return (self.settings.listing_id_property, str(property_id)) if property_id else None


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


def _owner_key(user_id: Any) -> tuple[str, str] | None:
    """A contact's stable key: our website user id property (unique)."""
    return (mapping.CONTACT_USER_ID, str(user_id)) if user_id else None


def _user_key(i: Input) -> tuple[str, str] | None:
    """The stable key of the contact an owner's or a membership's input names."""
    return _owner_key(i.item.delivery.data.get("userId") or i.item.delivery.record_id)


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


PROPERTY_ERRORS_PREFIX = "Property values were not valid: "


def _property_details(error: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-property details of HubSpot's "Property values were not valid: [...]" message
    (each {"name", "error", "message"}), [] when the message has none."""
    message = str(error.get("message", ""))
    if PROPERTY_ERRORS_PREFIX not in message:
        return []
    try:
        details = json.loads(message.split(PROPERTY_ERRORS_PREFIX, 1)[1])
    except (json.JSONDecodeError, ValueError):
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _named_by_property(error: dict[str, Any], inputs: Sequence[Input]) -> list[Input]:
    """The inputs a property error points at: for a property that does not exist, every input
    that sends it; for a refused value (an option, a date, a number), the inputs that send
    the value its message quotes."""
    found: list[Input] = []
    for detail in _property_details(error):
        name = str(detail.get("name", ""))
        carriers = [i for i in inputs if name in (i.body.get("properties") or {})]
        if detail.get("error") == "PROPERTY_DOESNT_EXIST":
            found += carriers
            continue
        said = str(detail.get("message", ""))
        found += [i for i in carriers if _quotes(said, str(i.body["properties"][name]))]
    return [i for i in inputs if i in found]


def _quotes(message: str, value: str) -> bool:
    """Whether a property error's message is about `value`: HubSpot's messages start with the
    refused value ("sold was not one of the allowed options: [...]") or quote it; a value
    merely listed among the allowed options does not count."""
    return bool(value) and (message.startswith(f"{value} ") or f'"{value}"' in message)


def _gone(error: ProviderError | None) -> bool:
    """Whether HubSpot answered that the object an input names does not exist (deleted, or
    merged into another)."""
    return error is not None and (error.response or {}).get("category") == "OBJECT_NOT_FOUND"


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
