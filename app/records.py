"""Record kinds: what the website syncs, how each is validated, normalised, hashed and parented."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.inputs import MAX_INT32, problem
from app.money import known_currency


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
# An ISO 4217 code, lower-case as Stripe writes it; amounts beside it are in its major unit.
CurrencyCode = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3, to_lower=True),
    AfterValidator(known_currency),
]
# Text the internal CRM keeps in a VARCHAR(n) column (providers/internal/models.py): longer is
# refused at accept, not failed at delivery.
Code = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
StripeId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
MONEY_MAX = 10**12  # NUMERIC(14, 2), the internal CRM's money columns, holds less than this


def _not_a_boolean(value: Any) -> Any:
    # JSON `false` is not a price: pydantic's lax mode would read it as 0.
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


def _utc_representable(value: datetime | date) -> datetime | date:
    # 9999-12-31T23:59:59-14:00 is a valid ISO time but past the last UTC instant Python (and
    # PostgreSQL's timestamptz) can hold: every store converts to UTC first.
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("outside the range of times that can be stored") from None
    return value


# Bounded by the internal CRM's columns (providers/internal/models.py): INTEGER and NUMERIC(14,2).
Money = Annotated[float, BeforeValidator(_not_a_boolean), Field(ge=0, lt=MONEY_MAX)]
Count = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=0, le=MAX_INT32)]
Instant = Annotated[datetime, AfterValidator(_utc_representable)]
When = Annotated[datetime | date, AfterValidator(_utc_representable)]


def unstorable(value: Any) -> str | None:
    """Why a value cannot be stored as JSON or text (None if it can): non-finite numbers, NUL
    (PostgreSQL refuses it), lone surrogates, nesting past app.inputs.MAX_DEPTH."""
    found = problem(value)
    return found[1] if found else None


class _Record(BaseModel):
    # Unknown fields are kept (and hashed and sent on as custom data): the website may grow
    # fields before we map them, and rejecting them would break its calls.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_values_only(cls, data: Any) -> Any:
        # A backstop for records made in code (Stripe effects); bodies from outside are
        # checked before validation, where the 422 can name the field (app.inputs).
        if isinstance(data, dict) and (found := problem(data)):
            raise ValueError(f"{found[0]}: {found[1]}")
        return data


class Owner(_Record):
    userId: RecordId
    name: Text | None = None
    firstName: Text | None = None
    lastName: Text | None = None
    email: EmailStr | None = None
    phone: Text | None = None
    companyName: Text | None = None
    role: Label | None = None
    membershipStatus: Text | None = None
    status: Literal["active", "inactive", "suspended", "pending"] | None = None
    address: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postcode: Code | None = None
    country: Text | None = None
    signupDate: When | None = None
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
    postcode: Code | None = None
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
    plan: Label | None = None
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
    source: Label | None = None
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
    status: Code | None = None
    paymentStatus: Code | None = None

    @field_validator("checkOut")
    @classmethod
    def _not_before_check_in(cls, value: date | None, info: ValidationInfo) -> date | None:
        # A stay that ends before it starts is a typo or swapped fields: refused at accept, not
        # stored as a negative stay in every CRM. The same day is taken (a day use). Checked
        # within one body: a body with only checkOut is merged onto the stored checkIn later.
        check_in = info.data.get("checkIn")
        if value is not None and check_in is not None and value < check_in:
            raise ValueError(f"{value.isoformat()} is before checkIn ({check_in.isoformat()})")
        return value


MembershipStatus = Literal[
    "active", "past_due", "suspended", "cancelled", "expiring_soon", "expired", "inactive"
]


class Membership(_Record):
    userId: RecordId
    planTier: Literal["bronze", "silver", "gold"] | None = None
    billingCycle: Code | None = None
    price: Money | None = None
    status: MembershipStatus | None = None
    stripeCustomerId: StripeId | None = None
    stripeSubscriptionId: StripeId | None = None
    startDate: When | None = None
    endDate: When | None = None
    renewalDate: When | None = None
    cancelledDate: When | None = None
    lastPaymentDate: When | None = None
    lastPaymentAmount: Money | None = None
    currency: CurrencyCode | None = None  # of price and lastPaymentAmount
    nextPaymentDate: When | None = None
    autoRenew: bool | None = None
    paymentFailureCount: Count | None = None


class Note(_Record):
    noteId: RecordId
    ownerId: RecordId
    noteType: Literal["general", "follow_up", "issue", "opportunity"] = "general"
    priority: Literal["low", "medium", "high", "urgent"] = "medium"
    content: Text
    reminderDate: When | None = None


class Activity(_Record):
    activityId: RecordId
    ownerId: RecordId
    entityType: Text = "contact"
    activityType: Text
    title: Text | None = None
    details: Text | None = None
    metadata: dict[str, Any] | None = None
    occurredAt: Instant | None = None


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


# The fields of an enquiry or booking that name its guest: blanked when the guest is erased
# (the record itself, the owner's business, is kept).
GUEST_FIELDS = ("guestName", "guestEmail", "guestPhone")


def without_guest(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with its guest's details left out."""
    return {k: v for k, v in snapshot.items() if k not in GUEST_FIELDS}


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
