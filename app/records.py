"""Record kinds: what the website syncs, how each is validated, normalised, hashed and parented."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)


class Kind(StrEnum):
    owner = "owner"
    property = "property"
    enquiry = "enquiry"
    booking = "booking"
    membership = "membership"
    # Made by the service itself (Stripe effects), delivered through the same pipeline.
    note = "note"
    activity = "activity"


def _id_to_str(value: Any) -> Any:
    # The website sends numeric ids for some kinds (`"propertyId": 123`); we key by text.
    if isinstance(value, bool):
        return value  # let validation reject it
    return str(value) if isinstance(value, int) else value


RecordId = Annotated[
    str,
    BeforeValidator(_id_to_str),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]
Money = Annotated[float, Field(ge=0)]
# An ISO 4217 code, lower-case as Stripe writes it; amounts beside it are in its major unit.
CurrencyCode = Annotated[str, StringConstraints(min_length=3, max_length=3, to_lower=True)]
Count = Annotated[int, Field(ge=0)]


def unstorable(value: Any) -> str | None:
    """Why a value cannot be stored as JSON or text (None if it can): JSON has no NaN or
    Infinity but Python's parser accepts them (and 1e400 is inf); PostgreSQL refuses NUL."""
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    if isinstance(value, str) and "\x00" in value:
        return "text must not contain NUL characters"
    if isinstance(value, dict):
        return next((p for k, v in value.items() if (p := unstorable(k) or unstorable(v))), None)
    if isinstance(value, list):
        return next((p for v in value if (p := unstorable(v))), None)
    return None


class _Record(BaseModel):
    # Unknown fields are kept (and hashed and sent on as custom data): the website may grow
    # fields before we map them, and rejecting them would break its calls.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_values_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if problem := unstorable(key) or unstorable(value):
                    raise ValueError(f"{key}: {problem}")
        return data


class Owner(_Record):
    userId: RecordId
    name: Text | None = None
    firstName: Text | None = None
    lastName: Text | None = None
    email: EmailStr | None = None
    phone: Text | None = None
    companyName: Text | None = None
    role: Text | None = None
    membershipStatus: Text | None = None
    status: Literal["active", "inactive", "suspended", "pending"] | None = None
    address: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postcode: Text | None = None
    country: Text | None = None
    signupDate: datetime | date | None = None
    customFields: dict[str, Any] | None = None


class Property(_Record):
    propertyId: RecordId
    ownerId: RecordId | None = None
    title: Text | None = None
    name: Text | None = None
    description: Text | None = None
    location: Text | None = None
    address: Text | None = None
    city: Text | None = None
    postcode: Text | None = None
    country: Text | None = None
    bedrooms: Count | None = None
    bathrooms: Count | None = None
    maxGuests: Count | None = None
    pricePerNight: Money | None = None
    status: Literal["draft", "pending", "approved", "published", "rejected", "archived"] | None = (
        None
    )
    rejectionReason: Text | None = None
    slug: Text | None = None
    plan: Text | None = None
    mainImage: Text | None = None


class Enquiry(_Record):
    enquiryId: RecordId
    propertyId: RecordId | None = None
    guestName: Text | None = None
    guestEmail: EmailStr | None = None
    guestPhone: Text | None = None
    subject: Text | None = None
    message: Text | None = None
    status: Literal["new", "contacted", "qualified", "converted", "lost"] | None = None
    source: Text | None = None
    checkIn: date | None = None
    checkOut: date | None = None
    guests: Count | None = None


class Booking(_Record):
    bookingId: RecordId
    propertyId: RecordId | None = None
    guestName: Text | None = None
    guestEmail: EmailStr | None = None
    guestPhone: Text | None = None
    checkIn: date | None = None
    checkOut: date | None = None
    guests: Count | None = None
    totalPrice: Money | None = None
    currency: CurrencyCode | None = None
    status: Text | None = None
    paymentStatus: Text | None = None


MembershipStatus = Literal[
    "active", "past_due", "suspended", "cancelled", "expiring_soon", "expired", "inactive"
]


class Membership(_Record):
    userId: RecordId
    planTier: Literal["bronze", "silver", "gold"] | None = None
    billingCycle: Text | None = None
    price: Money | None = None
    status: MembershipStatus | None = None
    stripeCustomerId: Text | None = None
    stripeSubscriptionId: Text | None = None
    startDate: datetime | date | None = None
    endDate: datetime | date | None = None
    renewalDate: datetime | date | None = None
    cancelledDate: datetime | date | None = None
    lastPaymentDate: datetime | date | None = None
    lastPaymentAmount: Money | None = None
    currency: CurrencyCode | None = None  # of price and lastPaymentAmount
    nextPaymentDate: datetime | date | None = None
    autoRenew: bool | None = None
    paymentFailureCount: Count | None = None


class Note(_Record):
    noteId: RecordId
    ownerId: RecordId
    noteType: Literal["general", "follow_up", "issue", "opportunity"] = "general"
    priority: Literal["low", "medium", "high", "urgent"] = "medium"
    content: Text
    reminderDate: datetime | date | None = None


class Activity(_Record):
    activityId: RecordId
    ownerId: RecordId
    entityType: Text = "contact"
    activityType: Text
    title: Text | None = None
    details: Text | None = None
    metadata: dict[str, Any] | None = None
    occurredAt: datetime | None = None


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: Kind
    model: type[_Record]
    id_field: str
    label: str  # as the website's messages say it: "Owner synced to CRM successfully"
    parent_kind: Kind | None = None
    parent_field: str | None = None
    email_fields: tuple[str, ...] = ()
    phone_fields: tuple[str, ...] = ()


SPECS: dict[Kind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            Kind.owner, Owner, "userId", "Owner", email_fields=("email",), phone_fields=("phone",)
        ),
        KindSpec(Kind.property, Property, "propertyId", "Property", Kind.owner, "ownerId"),
        KindSpec(
            Kind.enquiry,
            Enquiry,
            "enquiryId",
            "Enquiry",
            Kind.property,
            "propertyId",
            email_fields=("guestEmail",),
            phone_fields=("guestPhone",),
        ),
        KindSpec(
            Kind.booking,
            Booking,
            "bookingId",
            "Booking",
            Kind.property,
            "propertyId",
            email_fields=("guestEmail",),
            phone_fields=("guestPhone",),
        ),
        KindSpec(Kind.membership, Membership, "userId", "Membership", Kind.owner, "userId"),
        KindSpec(Kind.note, Note, "noteId", "Note", Kind.owner, "ownerId"),
        KindSpec(Kind.activity, Activity, "activityId", "Activity", Kind.owner, "ownerId"),
    )
}

# The kinds the website syncs through /api/crm/sync/{kind}, with the plural bulk names.
PUBLIC_KINDS = (Kind.owner, Kind.property, Kind.enquiry, Kind.booking, Kind.membership)
PLURALS = {
    "owners": Kind.owner,
    "properties": Kind.property,
    "enquiries": Kind.enquiry,
    "bookings": Kind.booking,
    "memberships": Kind.membership,
}


class FieldError(ValueError):
    """Bad input in one field of a record; answered as 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalise_phone(value: str, region: str) -> str:
    """E.164, reading numbers without a country code in `region`."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise(spec: KindSpec, data: dict[str, Any], region: str) -> dict[str, Any]:
    """The canonical snapshot: emails lower-cased, phones E.164, empty values dropped."""
    out = {k: v for k, v in data.items() if v is not None and v != ""}
    for field in spec.email_fields:
        if field in out:
            out[field] = str(out[field]).strip().lower()
    for field in spec.phone_fields:
        if field in out:
            try:
                out[field] = normalise_phone(str(out[field]), region)
            except ValueError as exc:
                raise FieldError(field, f"{exc} ({out[field]!r})") from None
    return out


def content_hash(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parent_of(spec: KindSpec, snapshot: dict[str, Any]) -> tuple[Kind, str] | None:
    if spec.parent_kind is None or spec.parent_field is None:
        return None
    parent_id = snapshot.get(spec.parent_field)
    return (spec.parent_kind, str(parent_id)) if parent_id else None


def split_name(data: dict[str, Any], name_field: str = "name") -> tuple[str | None, str | None]:
    """First and last name: `firstName`/`lastName` if given, else `name_field` split at its
    first space (\"Mary Ann Smith\" -> \"Mary\", \"Ann Smith\")."""
    first, last = data.get("firstName"), data.get("lastName")
    if first or last:
        return first, last
    name = str(data.get(name_field) or "").strip()
    if not name:
        return None, None
    head, _, tail = name.partition(" ")
    return head, tail.strip() or None
