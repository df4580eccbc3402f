"""The HubSpot and TreadSoft delete paths, pinned with respx: every request they send."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from app.models import Operation
from app.providers.base import Action, Delivery, FailureKind
from app.providers.hubspot.deletes import BatchArchive, GdprDelete
from app.providers.treadsoft import TreadSoftProvider
from app.records import Kind
from app.settings import TreadSoftSettings
from tests.providers.conftest import HUBSPOT, body, delivery

TS = "https://api.treadsoft.example"


def removing(kind: Kind, record_id: str, data: dict[str, Any], **kw: Any) -> Delivery:
    operation = kw.pop("operation", Operation.delete)
    return dataclasses.replace(delivery(kind, record_id, data, **kw), operation=operation)


# -- HubSpot ----------------------------------------------------------------------------------


@respx.mock
async def test_hubspot_archives_each_kind_in_one_batch_of_its_object_type(hubspot) -> None:
    calls = {
        path: respx.post(f"{HUBSPOT}/crm/v3/objects/{path}/batch/archive").mock(
            return_value=httpx.Response(204)
        )
        for path in ("contacts", "0-420", "deals", "notes")
    }
    cases = [
        (Kind.owner, "contacts", ["101", "102"]),
        (Kind.property, "0-420", ["201"]),
        (Kind.booking, "deals", ["301"]),
        (Kind.enquiry, "deals", ["302"]),
        (Kind.note, "notes", ["401"]),
    ]
    for kind, path, crm_ids in cases:
        batch = [
            removing(kind, f"{kind}-{n}", {}, crm_id=crm_id, job_id=n)
            for n, crm_id in enumerate(crm_ids)
        ]
        outcomes = await hubspot.delete(kind, batch)
        assert [(o.ok, o.action, o.crm_id) for o in outcomes] == [
            (True, Action.delete, c) for c in crm_ids
        ]
        sent = body(calls[path].calls[-1].request)
        BatchArchive.model_validate(sent)  # the shape HubSpot documents
        assert sent == {"inputs": [{"id": c} for c in crm_ids]}
    assert calls["deals"].call_count == 2 and calls["contacts"].call_count == 1


@respx.mock
async def test_hubspot_erases_an_owner_with_a_gdpr_delete_of_their_contact(hubspot) -> None:
    gdpr = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/gdpr-delete").mock(
        return_value=httpx.Response(204)
    )
    owner = removing(Kind.owner, "u1", {"email": "ann@example.com"}, crm_id="101")

    [outcome] = await hubspot.delete(
        Kind.owner, [dataclasses.replace(owner, operation=Operation.erase)]
    )

    assert outcome.ok and outcome.action is Action.delete
    sent = body(gdpr.calls[0].request)
    GdprDelete.model_validate(sent)
    assert sent == {"objectId": "101"}


@respx.mock
async def test_hubspot_forgets_a_guest_by_email_and_keeps_the_deal_without_them(hubspot) -> None:
    gdpr = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/gdpr-delete").mock(
        return_value=httpx.Response(204)
    )
    deal = respx.post(f"{HUBSPOT}/crm/v3/objects/deals/batch/upsert").mock(
        return_value=httpx.Response(
            200, json={"status": "COMPLETE", "results": [{"id": "301", "new": False}]}
        )
    )
    listing_link = respx.post(
        f"{HUBSPOT}/crm/v4/associations/deals/0-420/batch/associate/default"
    ).mock(return_value=httpx.Response(200, json={"status": "COMPLETE", "results": []}))
    data = {
        "bookingId": "b1",
        "propertyId": "p1",
        "guestName": "Gus Guest",
        "guestEmail": "gus@example.com",
        "guestPhone": "+447700900123",
        "totalPrice": 500,
    }
    booking = removing(
        Kind.booking, "b1", data, crm_id="301", parent_crm_id="201", operation=Operation.erase
    )

    [outcome] = await hubspot.delete(Kind.booking, [booking])

    assert outcome.ok, outcome.error
    assert body(gdpr.calls[0].request) == {"objectId": "gus@example.com", "idProperty": "email"}
    [written] = body(deal.calls[0].request)["inputs"]
    assert "Gus" not in str(written) and "gus@example.com" not in str(written)
    assert written["properties"]["dealname"] == "Booking b1: guest"
    assert listing_link.call_count == 1


@respx.mock
async def test_hubspot_clears_a_deleted_membership_from_the_owner_contact(hubspot) -> None:
    update = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/update").mock(
        return_value=httpx.Response(200, json={"status": "COMPLETE", "results": [{"id": "101"}]})
    )
    membership = removing(
        Kind.membership, "u1", {"planTier": "gold", "status": "active"}, parent_crm_id="101"
    )

    [outcome] = await hubspot.delete(Kind.membership, [membership])

    assert outcome.ok
    assert body(update.calls[0].request) == {
        "inputs": [{"id": "101", "properties": {"membership_tier": "", "membership_status": ""}}]
    }


@respx.mock
async def test_hubspot_archive_failures_are_judged_like_any_delivery(hubspot) -> None:
    route = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/archive")
    owner = removing(Kind.owner, "u1", {}, crm_id="101")

    route.mock(return_value=httpx.Response(503, json={"message": "try later"}))
    [down] = await hubspot.delete(Kind.owner, [owner])
    route.mock(
        return_value=httpx.Response(400, json={"category": "VALIDATION_ERROR", "message": "bad"})
    )
    [refused] = await hubspot.delete(Kind.owner, [owner])

    assert down.error is not None and down.error.kind is FailureKind.transient
    assert refused.error is not None and refused.error.kind is FailureKind.rejected
    assert refused.error.message == "HubSpot VALIDATION_ERROR: bad"
    assert refused.action is Action.delete
    assert refused.request == {
        "path": "/crm/v3/objects/contacts/batch/archive",
        "input": {"id": "101"},
    }


@respx.mock
async def test_hubspot_gdpr_delete_of_a_contact_already_gone_is_done(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/gdpr-delete").mock(
        return_value=httpx.Response(404, json={"category": "OBJECT_NOT_FOUND", "message": "no"})
    )
    owner = removing(Kind.owner, "u1", {}, crm_id="101", operation=Operation.erase)
    [outcome] = await hubspot.delete(Kind.owner, [owner])
    assert outcome.ok and outcome.http_status == 404


# -- TreadSoft --------------------------------------------------------------------------------


@pytest.fixture
async def treadsoft() -> AsyncIterator[TreadSoftProvider]:
    settings = TreadSoftSettings(_env_file=None, url=TS, key="k-123456", secret="s-654321")  # type: ignore[call-arg]
    provider = TreadSoftProvider(settings)
    yield provider
    await provider.aclose()


@respx.mock
async def test_treadsoft_deletes_by_id_and_a_404_counts_as_done(treadsoft) -> None:
    gone = respx.delete(f"{TS}/api/v1/properties/ts_property_1").mock(
        return_value=httpx.Response(204)
    )
    missing = respx.delete(f"{TS}/api/v1/enquiries/ts_enquiry_9").mock(
        return_value=httpx.Response(404, json={"error": "not found"})
    )

    [prop] = await treadsoft.delete(
        Kind.property, [removing(Kind.property, "p1", {}, crm_id="ts_property_1", job_id=7)]
    )
    [enquiry] = await treadsoft.delete(
        Kind.enquiry, [removing(Kind.enquiry, "e1", {}, crm_id="ts_enquiry_9")]
    )

    assert prop.ok and prop.action is Action.delete and prop.http_status == 204
    assert gone.calls[0].request.headers["idempotency-key"] == "test-7"
    assert gone.calls[0].request.headers["x-api-secret"] == "s-654321"
    assert enquiry.ok and enquiry.http_status == 404
    assert missing.call_count == 1


@respx.mock
async def test_treadsoft_finds_a_record_by_its_website_id_before_deleting(treadsoft) -> None:
    respx.get(f"{TS}/api/v1/contacts", params={"website_id": "u1"}).mock(
        return_value=httpx.Response(
            200, json={"data": [{"id": "ts_contact_4", "custom_fields": {"website_id": "u1"}}]}
        )
    )
    gone = respx.delete(f"{TS}/api/v1/contacts/ts_contact_4").mock(return_value=httpx.Response(204))
    [outcome] = await treadsoft.delete(Kind.owner, [removing(Kind.owner, "u1", {})])
    assert outcome.ok and outcome.crm_id == "ts_contact_4"
    assert gone.call_count == 1


@respx.mock
async def test_treadsoft_erases_a_guest_by_nulling_their_fields(treadsoft) -> None:
    put = respx.put(f"{TS}/api/v1/bookings/ts_booking_2").mock(
        return_value=httpx.Response(200, json={"id": "ts_booking_2"})
    )
    booking = removing(
        Kind.booking,
        "b1",
        {"guestEmail": "g@x.com"},
        crm_id="ts_booking_2",
        operation=Operation.erase,
    )
    [outcome] = await treadsoft.delete(Kind.booking, [booking])
    assert outcome.ok
    assert body(put.calls[0].request) == {"guestName": None, "guestEmail": None, "guestPhone": None}


@respx.mock
async def test_treadsoft_refusing_a_delete_is_rejected_and_a_5xx_retried(treadsoft) -> None:
    route = respx.delete(f"{TS}/api/v1/contacts/ts_contact_1")
    owner = removing(Kind.owner, "u1", {}, crm_id="ts_contact_1")
    route.mock(return_value=httpx.Response(409, json={"error": "contact has open bookings"}))
    [refused] = await treadsoft.delete(Kind.owner, [owner])
    route.mock(return_value=httpx.Response(502, json={"error": "bad gateway"}))
    [down] = await treadsoft.delete(Kind.owner, [owner])

    assert refused.error is not None and refused.error.kind is FailureKind.rejected
    assert refused.error.message == "TreadSoft 409: contact has open bookings"
    assert down.error is not None and down.error.kind is FailureKind.transient


async def test_a_provider_without_a_delete_path_refuses_instead_of_pretending() -> None:
    from app.providers.base import Outcome, Provider

    class Plain(Provider):
        name = "plain"

        async def deliver(self, kind: Kind, deliveries: Any) -> list[Outcome]:
            return []

    [outcome] = await Plain().delete(Kind.owner, [removing(Kind.owner, "u1", {}, crm_id="1")])

    assert outcome.error is not None and outcome.error.kind is FailureKind.rejected
    assert outcome.action is Action.delete
    assert outcome.error.message == "plain cannot delete records"
