"""Canonical records as HubSpot properties: every value a string, converted by its property's
declared type (app/providers/hubspot/properties.py): dates as the calendar day at midnight UTC,
datetimes as the instant, both in epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.providers.hubspot import properties
from app.providers.hubspot.properties import ObjectName
from app.records import split_name

_DEFINITIONS = properties.by_object()

# The website ids live in custom properties (README: "HubSpot setup" lists them to create).
CONTACT_USER_ID = "website_user_id"

# The stages of HubSpot's default deal pipeline and of the leads pipeline.
ENQUIRY_DEAL_STAGES = {
    "new": "appointmentscheduled",
    "contacted": "qualifiedtobuy",
    "qualified": "presentationscheduled",
    "converted": "closedwon",
    "lost": "closedlost",
}
BOOKING_DEAL_STAGES = {
    "pending": "contractsent",
    "confirmed": "closedwon",
    "paid": "closedwon",
    "completed": "closedwon",
    "cancelled": "closedlost",
    "canceled": "closedlost",
    "refunded": "closedlost",
}
LEAD_STAGES = {
    "new": "new-stage-id",
    "contacted": "attempting-stage-id",
    "qualified": "connected-stage-id",
    "converted": "qualified-stage-id",
    "lost": "unqualified-stage-id",
}


def epoch_ms(value: Any) -> str | None:
    """An instant as epoch milliseconds (HubSpot's datetime form); see properties.value_for
    for properties, whose declared type decides between a date and an instant."""
    return properties.datetime_ms(value)


def text(value: Any) -> str | None:
    return properties.text(value)


def _props(obj: ObjectName, pairs: dict[str, Any]) -> dict[str, str]:
    """Each value as its property's declared type takes it (a `date` the calendar day the
    website meant, a `datetime` the instant); empty values left out. A property not among
    the definitions (an id property renamed by a setting) is a string."""
    defs = _DEFINITIONS[obj]
    out: dict[str, str] = {}
    for name, value in pairs.items():
        d = defs.get(name)
        converted = properties.value_for(d, value) if d else text(value)
        if converted is not None:
            out[name] = converted
    return out


def contact(data: dict[str, Any], user_id: str) -> dict[str, str]:
    first, last = split_name(data)
    return _props(
        "contacts",
        {
            "email": text(data.get("email")),
            "firstname": first,
            "lastname": last,
            "phone": text(data.get("phone")),
            "company": text(data.get("companyName")),
            "address": text(data.get("address")),
            "city": text(data.get("city")),
            "state": text(data.get("state")),
            "zip": text(data.get("postcode")),
            "country": text(data.get("country")),
            CONTACT_USER_ID: user_id,
            "website_role": text(data.get("role")),
            "website_account_status": text(data.get("status")),
            "membership_status": text(data.get("membershipStatus")),
            "website_signup_date": data.get("signupDate"),
        },
    )


def membership(data: dict[str, Any]) -> dict[str, str]:
    return _props(
        "contacts",
        {
            "membership_tier": text(data.get("planTier")),
            "membership_billing_cycle": text(data.get("billingCycle")),
            "membership_price": text(data.get("price")),
            "membership_status": text(data.get("status")),
            "stripe_customer_id": text(data.get("stripeCustomerId")),
            "stripe_subscription_id": text(data.get("stripeSubscriptionId")),
            "membership_start_date": data.get("startDate"),
            "membership_end_date": data.get("endDate"),
            "membership_renewal_date": data.get("renewalDate"),
            "membership_cancelled_date": data.get("cancelledDate"),
            "membership_last_payment_date": data.get("lastPaymentDate"),
            "membership_last_payment_amount": text(data.get("lastPaymentAmount")),
            "membership_next_payment_date": data.get("nextPaymentDate"),
            "membership_auto_renew": text(data.get("autoRenew")),
            "membership_payment_failure_count": text(data.get("paymentFailureCount")),
        },
    )


def listing(data: dict[str, Any], id_property: str, property_id: str) -> dict[str, str]:
    return _props(
        "listings",
        {
            id_property: property_id,
            "hs_name": text(data.get("title") or data.get("name")) or f"Property {property_id}",
            "hs_address_1": text(data.get("address") or data.get("location")),
            "hs_city": text(data.get("city")),
            "hs_zip": text(data.get("postcode")),
            "hs_bedrooms": text(data.get("bedrooms")),
            "hs_bathrooms": text(data.get("bathrooms")),
            "hs_price": text(data.get("pricePerNight")),
            "max_guests": text(data.get("maxGuests")),
            "listing_status": text(data.get("status")),
            "listing_country": text(data.get("country")),
            "listing_slug": text(data.get("slug")),
            "listing_plan": text(data.get("plan")),
        },
    )


def guest(data: dict[str, Any]) -> dict[str, str] | None:
    """The guest of an enquiry or booking as a contact (upserted by email), if there is one."""
    if not data.get("guestEmail"):
        return None
    first, last = split_name(data, "guestName")
    return _props(
        "contacts",
        {
            "email": text(data.get("guestEmail")),
            "firstname": first,
            "lastname": last,
            "phone": text(data.get("guestPhone")),
        },
    )


def booking_deal(
    data: dict[str, Any], id_property: str, booking_id: str, pipeline: str
) -> dict[str, str]:
    status = str(data.get("status") or "pending").lower()
    who = data.get("guestName") or data.get("guestEmail") or "guest"
    return _props(
        "deals",
        {
            id_property: booking_id,
            "dealname": f"Booking {booking_id}: {who}",
            "pipeline": pipeline,
            "dealstage": BOOKING_DEAL_STAGES.get(status, "contractsent"),
            "amount": text(data.get("totalPrice")),
            "deal_currency_code": text(str(data["currency"]).upper())
            if data.get("currency")
            else None,
            "check_in_date": data.get("checkIn"),
            "check_out_date": data.get("checkOut"),
            "number_of_guests": text(data.get("guests")),
            "booking_status": text(data.get("status")),
            "payment_status": text(data.get("paymentStatus")),
        },
    )


def enquiry_deal(
    data: dict[str, Any], id_property: str, enquiry_id: str, pipeline: str
) -> dict[str, str]:
    status = str(data.get("status") or "new").lower()
    subject = data.get("subject") or data.get("guestName") or data.get("guestEmail") or "enquiry"
    return _props(
        "deals",
        {
            id_property: enquiry_id,
            "dealname": f"Enquiry {enquiry_id}: {subject}",
            "pipeline": pipeline,
            "dealstage": ENQUIRY_DEAL_STAGES.get(status, "appointmentscheduled"),
            "description": text(data.get("message")),
            "enquiry_status": text(data.get("status")),
            "enquiry_source": text(data.get("source")),
            "check_in_date": data.get("checkIn"),
            "check_out_date": data.get("checkOut"),
            "number_of_guests": text(data.get("guests")),
        },
    )


def enquiry_lead(data: dict[str, Any], id_property: str, enquiry_id: str) -> dict[str, str]:
    status = str(data.get("status") or "new").lower()
    subject = data.get("subject") or data.get("guestName") or data.get("guestEmail") or "enquiry"
    return _props(
        "leads",
        {
            id_property: enquiry_id,
            "hs_lead_name": f"Enquiry {enquiry_id}: {subject}",
            "hs_pipeline_stage": LEAD_STAGES.get(status, "new-stage-id"),
            "enquiry_status": text(data.get("status")),
            "enquiry_source": text(data.get("source")),
        },
    )


def note_key(note_id: str, *, activity: bool = False) -> str:
    """The value of our unique note property (properties.NOTE_ID) for a website note or
    activity: kind and id, since a note and an activity may share an id."""
    return f"{'activity' if activity else 'note'}:{note_id}"


def note(data: dict[str, Any], note_id: str, *, activity: bool = False) -> dict[str, str]:
    """A note, or an activity written as a note: HubSpot's timeline shows both the same way.
    It carries our note id (properties.NOTE_ID) so that a lost create answer is found again."""
    if activity:
        title = data.get("title") or data.get("activityType") or "Activity"
        lines = [f"<strong>{title}</strong>", str(data.get("details") or "")]
        meta = data.get("metadata") or {}
        lines += [f"{k}: {v}" for k, v in sorted(meta.items())]
        body = "<br>".join(line for line in lines if line)
        when = data.get("occurredAt")
    else:
        priority = data.get("priority", "medium")
        kind = data.get("noteType", "general")
        body = f"[{priority} priority, {kind}] {data.get('content', '')}"
        when = data.get("reminderDate")
    return _props(
        "notes",
        {
            "hs_note_body": body,
            "hs_timestamp": when or datetime.now(UTC),
            properties.NOTE_ID: note_key(note_id, activity=activity),
        },
    )
