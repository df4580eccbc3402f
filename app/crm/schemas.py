"""What the internal CRM's read API takes and answers (camelCase, times in ISO 8601 UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
)
from pydantic.alias_generators import to_camel

from app.providers.internal.models import (
    EnquiryStatus,
    NotePriority,
    NoteType,
    enquiry_next_statuses,
)
from app.records import Instant


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, alias_generator=to_camel, populate_by_name=True)


# The ORM attribute is `meta` (`metadata` is SQLAlchemy's own); the API says `metadata`.
_Metadata = Annotated[
    dict[str, Any] | None,
    Field(validation_alias=AliasChoices("meta", "metadata"), serialization_alias="metadata"),
]


class ContactOut(_Out):
    id: str
    user_id: str | None
    type: str
    status: str
    name: str | None
    email: str | None
    phone: str | None
    company_name: str | None
    role: str | None
    address: str | None
    city: str | None
    state: str | None
    postcode: str | None
    country: str | None
    signup_date: datetime | None
    last_activity_date: datetime | None
    metadata: _Metadata = None
    notes: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(None, description="soft-deleted at (with includeDeleted)")


class ContactPage(_Out):
    success: bool = True
    contacts: list[ContactOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class PropertyOut(_Out):
    id: str
    property_id: str
    owner_contact_id: str | None
    title: str | None
    location: str | None
    city: str | None
    postcode: str | None
    country: str | None
    bedrooms: int | None
    bathrooms: int | None
    guests: int | None
    price_per_night: float | None
    listing_status: str | None
    link_status: str | None = Field(None, description="the owner link: active/pending/inactive")
    slug: str | None
    plan: str | None
    enquiry_count: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(None, description="soft-deleted at (with includeDeleted)")


class EnquiryOut(_Out):
    id: str
    enquiry_id: str
    status: str
    crm_property_id: str | None
    property_id: str | None = Field(None, description="the website's property id")
    property_title: str | None = None
    owner_contact_id: str | None
    guest_contact_id: str | None
    guest_name: str | None
    guest_email: str | None
    guest_phone: str | None
    subject: str | None
    message: str | None
    source: str | None
    check_in: date | None
    check_out: date | None
    guests: int | None
    status_changed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    deleted_at: datetime | None = Field(None, description="soft-deleted at (with includeDeleted)")

    @computed_field(description="where PUT may move it")  # type: ignore[prop-decorator]
    @property
    def next_statuses(self) -> list[str]:
        return [s.value for s in enquiry_next_statuses(self.status)]


class EnquiryPage(_Out):
    success: bool = True
    enquiries: list[EnquiryOut]
    next_cursor: str | None


class EnquiryUpdate(_Out):
    status: EnquiryStatus
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)] | None = (
        Field(None, description="why; kept in the activity log")
    )


class BookingOut(_Out):
    id: str
    booking_id: str
    crm_property_id: str | None
    owner_contact_id: str | None
    guest_contact_id: str | None
    guest_name: str | None
    guest_email: str | None
    check_in: date | None
    check_out: date | None
    guests: int | None
    total_price: float | None
    currency: str | None
    status: str | None
    payment_status: str | None
    created_at: datetime
    deleted_at: datetime | None = Field(None, description="soft-deleted at (with includeDeleted)")


class MembershipOut(_Out):
    id: str
    user_id: str
    contact_id: str
    plan_tier: str | None
    billing_cycle: str | None
    plan_price: float | None
    status: str | None
    start_date: datetime | None
    end_date: datetime | None
    renewal_date: datetime | None
    cancelled_date: datetime | None
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    last_payment_date: datetime | None
    last_payment_amount: float | None
    next_payment_date: datetime | None
    auto_renew: bool | None
    payment_failure_count: int
    created_at: datetime
    updated_at: datetime


class NoteOut(_Out):
    id: str
    note_id: str | None
    contact_id: str
    note_type: str
    priority: str
    content: str
    reminder_date: datetime | None
    created_by: str | None
    created_at: datetime


class NoteIn(_Out):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    content: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
    ]
    note_type: NoteType = NoteType.general
    priority: NotePriority = NotePriority.medium
    reminder_date: Instant | None = Field(None, description="a date is its midnight UTC")

    @field_validator("reminder_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is read as UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class InteractionOut(_Out):
    id: str
    contact_id: str
    crm_property_id: str | None
    crm_enquiry_id: str | None
    type: str
    subject: str | None
    content: str | None
    direction: str | None
    initiated_by: str | None
    created_at: datetime
    read_at: datetime | None


class ActivityOut(_Out):
    id: str
    activity_id: str | None
    contact_id: str | None
    entity_type: str
    entity_id: str | None
    activity_type: str
    title: str | None
    details: str | None
    metadata: _Metadata = None
    performed_by: str | None
    occurred_at: datetime


class ContactDetail(_Out):
    """One contact with what hangs off it, newest first (lists capped: see DETAIL_LIMIT)."""

    success: bool = True
    contact: ContactOut
    properties: list[PropertyOut] = Field(description="the properties an owner has")
    enquiries: list[EnquiryOut] = Field(description="on an owner's properties, or a guest's")
    bookings: list[BookingOut]
    membership: MembershipOut | None
    notes: list[NoteOut]
    interactions: list[InteractionOut]
    activity: list[ActivityOut]


class Counts(_Out):
    total: int


class ContactStats(Counts):
    by_type: dict[str, int]
    by_status: dict[str, int]


class PropertyStats(Counts):
    by_listing_status: dict[str, int]
    links_by_status: dict[str, int]


class EnquiryStats(Counts):
    by_status: dict[str, int]
    conversion_rate: float = Field(description="converted / all enquiries, 0 to 1")


class MembershipStats(Counts):
    by_status: dict[str, int]
    by_tier: dict[str, int]


class SyncStats(_Out):
    failed_last_24h: int = Field(serialization_alias="failedLast24h")
    failed_last_24h_by_provider: dict[str, int] = Field(
        serialization_alias="failedLast24hByProvider"
    )


class Stats(_Out):
    success: bool = True
    contacts: ContactStats
    properties: PropertyStats
    enquiries: EnquiryStats
    bookings: Counts
    memberships: MembershipStats
    notes: Counts
    interactions: Counts
    activity: Counts
    sync: SyncStats
    generated_at: datetime
