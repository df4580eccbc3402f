"""Canonical records as HubSpot properties: every value a string, dates as epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from app.records import split_name

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
    """HubSpot date and datetime properties take epoch milliseconds (dates at midnight UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed: date | datetime = (
                datetime.fromisoformat(value.replace("Z", "+00:00"))
                if "T" in value or " " in value
                else date.fromisoformat(value)
            )
        except ValueError:
            return None
        value = parsed
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return str(int(moment.timestamp() * 1000))
    if isinstance(value, date):
        return str(int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000))
    return None


def text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _props(pairs: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in pairs.items() if v is not None}


def contact(data: dict[str, Any], user_id: str) -> dict[str, str]:
    first, last = split_name(data)
    return _props(
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
            "website_signup_date": epoch_ms(data.get("signupDate")),
        }
    )


def membership(data: dict[str, Any]) -> dict[str, str]:
    return _props(
        {
            "membership_tier": text(data.get("planTier")),
            "membership_billing_cycle": text(data.get("billingCycle")),
            "membership_price": text(data.get("price")),
            "membership_status": text(data.get("status")),
            "stripe_customer_id": text(data.get("stripeCustomerId")),
            "stripe_subscription_id": text(data.get("stripeSubscriptionId")),
            "membership_start_date": epoch_ms(data.get("startDate")),
            "membership_end_date": epoch_ms(data.get("endDate")),
            "membership_renewal_date": epoch_ms(data.get("renewalDate")),
            "membership_cancelled_date": epoch_ms(data.get("cancelledDate")),
            "membership_last_payment_date": epoch_ms(data.get("lastPaymentDate")),
            "membership_last_payment_amount": text(data.get("lastPaymentAmount")),
            "membership_next_payment_date": epoch_ms(data.get("nextPaymentDate")),
            "membership_auto_renew": text(data.get("autoRenew")),
            "membership_payment_failure_count": text(data.get("paymentFailureCount")),
        }
    )


def listing(data: dict[str, Any], id_property: str, property_id: str) -> dict[str, str]:
    return _props(
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
        }
    )


def guest(data: dict[str, Any]) -> dict[str, str] | None:
    """The guest of an enquiry or booking as a contact (upserted by email), if there is one."""
    if not data.get("guestEmail"):
        return None
    first, last = split_name(data, "guestName")
    return _props(
        {
            "email": text(data.get("guestEmail")),
            "firstname": first,
            "lastname": last,
            "phone": text(data.get("guestPhone")),
        }
    )


def booking_deal(
    data: dict[str, Any], id_property: str, booking_id: str, pipeline: str
) -> dict[str, str]:
    status = str(data.get("status") or "pending").lower()
    who = data.get("guestName") or data.get("guestEmail") or "guest"
    return _props(
        {
            id_property: booking_id,
            "dealname": f"Booking {booking_id}: {who}",
            "pipeline": pipeline,
            "dealstage": BOOKING_DEAL_STAGES.get(status, "contractsent"),
            "amount": text(data.get("totalPrice")),
            "deal_currency_code": text(str(data["currency"]).upper())
            if data.get("currency")
            else None,
            "check_in_date": epoch_ms(data.get("checkIn")),
            "check_out_date": epoch_ms(data.get("checkOut")),
            "number_of_guests": text(data.get("guests")),
            "booking_status": text(data.get("status")),
            "payment_status": text(data.get("paymentStatus")),
        }
    )


def enquiry_deal(
    data: dict[str, Any], id_property: str, enquiry_id: str, pipeline: str
) -> dict[str, str]:
    status = str(data.get("status") or "new").lower()
    subject = data.get("subject") or data.get("guestName") or data.get("guestEmail") or "enquiry"
    return _props(
        {
            id_property: enquiry_id,
            "dealname": f"Enquiry {enquiry_id}: {subject}",
            "pipeline": pipeline,
            "dealstage": ENQUIRY_DEAL_STAGES.get(status, "appointmentscheduled"),
            "description": text(data.get("message")),
            "enquiry_status": text(data.get("status")),
            "enquiry_source": text(data.get("source")),
            "check_in_date": epoch_ms(data.get("checkIn")),
            "check_out_date": epoch_ms(data.get("checkOut")),
            "number_of_guests": text(data.get("guests")),
        }
    )


def enquiry_lead(data: dict[str, Any], id_property: str, enquiry_id: str) -> dict[str, str]:
    status = str(data.get("status") or "new").lower()
    subject = data.get("subject") or data.get("guestName") or data.get("guestEmail") or "enquiry"
    return _props(
        {
            id_property: enquiry_id,
            "hs_lead_name": f"Enquiry {enquiry_id}: {subject}",
            "hs_pipeline_stage": LEAD_STAGES.get(status, "new-stage-id"),
            "enquiry_status": text(data.get("status")),
            "enquiry_source": text(data.get("source")),
        }
    )


def note(data: dict[str, Any], note_id: str, *, activity: bool = False) -> dict[str, str]:
    """A note, or an activity written as a note: HubSpot's timeline shows both the same way."""
    if activity:
        title = data.get("title") or data.get("activityType") or "Activity"
        lines = [f"<strong>{title}</strong>", str(data.get("details") or "")]
        meta = data.get("metadata") or {}
        lines += [f"{k}: {v}" for k, v in sorted(meta.items())]
        body = "<br>".join(line for line in lines if line)
        when = epoch_ms(data.get("occurredAt"))
    else:
        priority = data.get("priority", "medium")
        kind = data.get("noteType", "general")
        body = f"[{priority} priority, {kind}] {data.get('content', '')}"
        when = epoch_ms(data.get("reminderDate"))
    return _props(
        {
            "hs_note_body": body,
            "hs_timestamp": when or str(int(datetime.now(UTC).timestamp() * 1000)),
        }
    )
