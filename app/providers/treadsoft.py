"""The TreadSoft adapter (the seed code's CRM): REST JSON at CRM_API_URL/api/v1, one record a call.

POST creates (the returned id is stored), PUT /{id} updates. Every write carries an
Idempotency-Key (per job and content) and the website id in `custom_fields.website_id`; before
creating a record whose CRM id we do not know, we look it up by that website id, so a create
whose answer was lost is never made twice."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from app.models import Operation
from app.providers.base import Action, Delivery, FailureKind, Outcome, Provider, ProviderError
from app.providers.http import HttpClient, json_of, message_of
from app.records import GUEST_FIELDS, Kind, split_name
from app.settings import TreadSoftSettings

log = logging.getLogger(__name__)

RESOURCES = {
    Kind.owner: "contacts",
    Kind.property: "properties",
    Kind.enquiry: "enquiries",
    Kind.booking: "bookings",
}


def _custom(kind: Kind, record_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(extra or {}), "website_id": record_id, "website_kind": kind.value}


def body_for(delivery: Delivery) -> dict[str, Any]:
    """The seed code's field names (camelCase), plus custom_fields with the website id."""
    d, kind = delivery.data, delivery.kind
    if kind is Kind.owner:
        first, last = split_name(d)
        out = {
            "firstName": first,
            "lastName": last,
            "email": d.get("email"),
            "phone": d.get("phone"),
            "companyName": d.get("companyName"),
            "role": d.get("role") or "owner",
            "membershipStatus": d.get("membershipStatus"),
            "status": d.get("status"),
            "address": d.get("address"),
            "city": d.get("city"),
            "postcode": d.get("postcode"),
            "country": d.get("country"),
            "custom_fields": _custom(kind, delivery.record_id, d.get("customFields")),
        }
    elif kind is Kind.property:
        out = {
            "title": d.get("title") or d.get("name"),
            "location": d.get("location") or d.get("address"),
            "city": d.get("city"),
            "postcode": d.get("postcode"),
            "country": d.get("country"),
            "bedrooms": d.get("bedrooms"),
            "bathrooms": d.get("bathrooms"),
            "maxGuests": d.get("maxGuests"),
            "pricePerNight": d.get("pricePerNight"),
            "status": d.get("status"),
            "ownerId": delivery.parent_crm_id,
            "custom_fields": _custom(kind, delivery.record_id),
        }
    elif kind is Kind.enquiry:
        out = {
            "guestName": d.get("guestName"),
            "guestEmail": d.get("guestEmail"),
            "guestPhone": d.get("guestPhone"),
            "subject": d.get("subject"),
            "message": d.get("message"),
            "status": d.get("status"),
            "source": d.get("source") or "website",
            "propertyId": delivery.parent_crm_id,
            "custom_fields": _custom(kind, delivery.record_id),
        }
    elif kind is Kind.booking:
        out = {
            "guestName": d.get("guestName"),
            "guestEmail": d.get("guestEmail"),
            "guestPhone": d.get("guestPhone"),
            "checkIn": d.get("checkIn"),
            "checkOut": d.get("checkOut"),
            "guests": d.get("guests"),
            "totalPrice": d.get("totalPrice"),
            "currency": str(d["currency"]).upper() if d.get("currency") else None,
            "status": d.get("status"),
            "paymentStatus": d.get("paymentStatus"),
            "propertyId": delivery.parent_crm_id,
            "custom_fields": _custom(kind, delivery.record_id),
        }
    else:  # membership: the owner's contact carries it, as in the seed code
        out = {
            "membershipStatus": d.get("status"),
            "membershipTier": d.get("planTier"),
            "custom_fields": _custom(
                Kind.owner,
                delivery.record_id,
                {
                    k: d[k]
                    for k in ("billingCycle", "price", "stripeCustomerId", "autoRenew")
                    if k in d
                },
            ),
        }
    return {k: v for k, v in out.items() if v is not None}


def _id_of(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for candidate in (payload, payload.get("data")):
        if isinstance(candidate, dict):
            for key in ("id", "crmId"):
                if candidate.get(key) is not None:
                    return str(candidate[key])
    return None


class TreadSoftClient(HttpClient):
    label = "TreadSoft"


class TreadSoftProvider(Provider):
    name = "treadsoft"
    batch_size = 1
    kinds: ClassVar[frozenset[Kind]] = frozenset(
        (Kind.owner, Kind.property, Kind.enquiry, Kind.booking, Kind.membership)
    )

    def __init__(
        self, settings: TreadSoftSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        key = settings.key.get_secret_value() if settings.key else ""
        secret = settings.secret.get_secret_value() if settings.secret else ""
        self.client = TreadSoftClient(
            base_url=str(settings.url).rstrip("/") if settings.url else "http://treadsoft.invalid",
            headers={
                "Authorization": f"Bearer {key}",
                "X-API-Secret": secret,
                "Accept": "application/json",
            },
            timeout=settings.timeout,
            secrets=(key, secret),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self) -> bool:
        try:
            response = await self._request("GET", "/api/v1/health")
        except ProviderError:
            return False
        return response.is_success

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else None
        return await self.client.request(method, path, json=body, params=params, headers=headers)

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes = []
        for delivery in deliveries:
            try:
                outcomes.append(await self._one(delivery))
            except ProviderError as exc:
                outcomes.append(Outcome.failed(exc))
        return outcomes

    async def _one(self, delivery: Delivery) -> Outcome:
        kind = delivery.kind
        body = body_for(delivery)
        if kind is Kind.membership:
            contact = delivery.parent_crm_id or delivery.crm_id
            if not contact:
                raise ProviderError(FailureKind.rejected, "the owner's contact is not known yet")
            return await self._write("PUT", f"/api/v1/contacts/{contact}", body, delivery)
        resource = RESOURCES[kind]
        crm_id = delivery.crm_id or await self._lookup(resource, delivery.record_id)
        if crm_id:
            outcome = await self._write("PUT", f"/api/v1/{resource}/{crm_id}", body, delivery)
            if outcome.http_status != 404:
                return outcome
            # Deleted on TreadSoft's side: find it again by the website id, or create anew.
            crm_id = await self._lookup(resource, delivery.record_id)
            if crm_id:
                return await self._write("PUT", f"/api/v1/{resource}/{crm_id}", body, delivery)
        return await self._write("POST", f"/api/v1/{resource}", body, delivery)

    async def delete(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """`DELETE /api/v1/{resource}/{id}` (the seed's contract), a 404 counting as done. A
        membership lives on the owner's contact: its fields there are cleared. An erased guest's
        enquiry or booking is kept, its guest fields set to null."""
        outcomes = []
        for delivery in deliveries:
            try:
                outcomes.append(await self._remove(delivery))
            except ProviderError as exc:
                outcomes.append(Outcome.failed(exc, Action.delete))
        return outcomes

    async def _remove(self, delivery: Delivery) -> Outcome:
        kind = delivery.kind
        if kind is Kind.membership:
            contact = delivery.parent_crm_id or delivery.crm_id
            if not contact:
                return Outcome(action=Action.delete, response={"deleted": False, "found": False})
            cleared = {"membershipStatus": None, "membershipTier": None}
            return await self._gone("PUT", f"/api/v1/contacts/{contact}", cleared, delivery)
        resource = RESOURCES[kind]
        crm_id = delivery.crm_id or await self._lookup(resource, delivery.record_id)
        if crm_id is None:
            return Outcome(action=Action.delete, response={"deleted": False, "found": False})
        path = f"/api/v1/{resource}/{crm_id}"
        if delivery.operation is Operation.erase and kind in (Kind.enquiry, Kind.booking):
            # TreadSoft keeps what a PUT leaves out: the guest's fields are sent as null.
            return await self._gone("PUT", path, dict.fromkeys(GUEST_FIELDS), delivery)
        return await self._gone("DELETE", path, None, delivery)

    async def _gone(
        self, method: str, path: str, body: dict[str, Any] | None, delivery: Delivery
    ) -> Outcome:
        response = await self._request(method, path, body, key=delivery.idempotency_key)
        payload = json_of(response) if response.content else None
        request = {"method": method, "path": path, "body": body}
        crm_id = path.rsplit("/", 1)[-1]
        if response.status_code >= 400 and response.status_code != 404:
            raise ProviderError(
                FailureKind.rejected,
                f"TreadSoft {response.status_code}: {message_of(payload)}",
                http_status=response.status_code,
                request=request,
                response=payload,
            )
        return Outcome(
            crm_id=crm_id,
            action=Action.delete,
            http_status=response.status_code,
            request=request,
            response=payload,
        )

    async def _lookup(self, resource: str, website_id: str) -> str | None:
        response = await self._request(
            "GET", f"/api/v1/{resource}", params={"website_id": website_id}
        )
        if not response.is_success:
            return None
        payload = json_of(response)
        rows = (
            payload.get("data", payload.get("results", []))
            if isinstance(payload, dict)
            else payload
        )
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            custom = row.get("custom_fields") or {}
            if str(custom.get("website_id")) == website_id and _id_of(row):
                return _id_of(row)
        return None

    async def _write(
        self, method: str, path: str, body: dict[str, Any], delivery: Delivery
    ) -> Outcome:
        response = await self._request(method, path, body, key=delivery.idempotency_key)
        payload = json_of(response)
        request = {"method": method, "path": path, "body": body}
        if response.status_code == 404 and method == "PUT":
            return Outcome(http_status=404, request=request, response=payload)
        if response.status_code >= 400:
            raise ProviderError(
                FailureKind.rejected,
                f"TreadSoft {response.status_code}: {message_of(payload)}",
                http_status=response.status_code,
                request=request,
                response=payload,
            )
        crm_id = _id_of(payload)
        if crm_id is None and method == "PUT":
            crm_id = path.rsplit("/", 1)[-1]
        if crm_id is None:
            raise ProviderError(
                FailureKind.transient,
                "TreadSoft answered without an id",
                http_status=response.status_code,
                request=request,
                response=payload,
            )
        return Outcome(
            crm_id=crm_id,
            action=Action.create if method == "POST" else Action.update,
            http_status=response.status_code,
            request=request,
            response=payload,
        )
