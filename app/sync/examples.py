"""Examples for the OpenAPI document: a record of each kind as the website sends it, and what
the sync endpoints answer (200, 202, 404, 422, 502)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.records import SPECS, Kind

EXAMPLES: dict[Kind, dict[str, Any]] = {
    Kind.owner: {
        "userId": "user_123abc",
        "name": "John Smith",
        "email": "john@example.com",
        "phone": "07700 900123",
        "companyName": "Smith Holiday Lets",
    },
    Kind.property: {
        "propertyId": "123",
        "ownerId": "user_123abc",
        "title": "Sea View Barn",
        "location": "Cornwall",
        "bedrooms": 4,
        "bathrooms": 2,
        "maxGuests": 8,
        "pricePerNight": 250,
        "status": "approved",
    },
    Kind.enquiry: {
        "enquiryId": "enq_1",
        "propertyId": "123",
        "guestName": "Gus Guest",
        "guestEmail": "gus@example.com",
        "guestPhone": "07700 900456",
        "subject": "May half-term",
        "message": "Is it free?",
        "status": "new",
    },
    Kind.booking: {
        "bookingId": "bk_1",
        "propertyId": "123",
        "guestName": "Gus Guest",
        "guestEmail": "gus@example.com",
        "checkIn": "2026-05-01",
        "checkOut": "2026-05-05",
        "guests": 6,
        "totalPrice": 1000,
        "currency": "GBP",
        "status": "confirmed",
        "paymentStatus": "deposit_paid",
    },
    Kind.membership: {
        "userId": "user_123abc",
        "planTier": "silver",
        "billingCycle": "annual",
        "price": 99,
        "status": "active",
        "autoRenew": True,
    },
}


def answer_examples(kind: Kind) -> Callable[[int], dict[str, Any]]:
    """For a status, the `content` of that answer with one example."""
    spec = SPECS[kind]
    external_id = EXAMPLES[kind][spec.id_field]
    at = "2026-11-30T09:43:08.123456Z"
    crm_id = "crm_contact_7b9d0b959da4"

    def status(state: str, error: str | None = None) -> dict[str, Any]:
        synced = state == "synced"
        return {
            spec.id_field: external_id,
            "crmId": crm_id if synced else None,
            "syncStatus": state,
            "lastSyncedAt": at if synced else None,
            "lastError": error,
            "providers": {
                "mock": {
                    "crmId": crm_id if synced else None,
                    "status": state,
                    "lastSyncedAt": at if synced else None,
                    "lastError": error,
                }
            },
        }

    refusal = "email: invalid email address"
    answers: dict[int, Any] = {
        200: {
            "success": True,
            "message": f"{spec.label} synced to CRM successfully",
            **status("synced"),
        },
        202: {
            "success": True,
            "message": f"{spec.label} sync accepted; delivery in progress",
            "statusUrl": f"/api/crm/sync/{kind.value}?{spec.id_field}={external_id}",
            **status("pending"),
        },
        404: {
            "success": False,
            "error": f"{spec.label} {external_id} has not been synced before; send its fields",
            "field": spec.id_field,
        },
        422: {
            "success": False,
            "error": f"{spec.id_field}: Field required",
            "field": spec.id_field,
            "errors": [{"field": spec.id_field, "message": "Field required"}],
        },
        502: {
            "success": False,
            "error": f"mock rejected {spec.label.lower()} {external_id}: {refusal}",
            "syncLogId": 1250,
            **status("failed", refusal),
        },
    }
    return lambda code: {"application/json": {"example": answers[code]}}
