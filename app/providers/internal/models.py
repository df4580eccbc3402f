"""The in-house CRM's tables, named after the seeds' (crm_contacts, crm_properties, ...).

Every row has a UUID primary key that foreign keys use, and the website id it came from under a
unique index for lookups (the seeds' "dual id"). Times are UTC. Relationships are lazy="raise":
nothing loads by accident, and they tell the unit of work to insert parents before children
(the foreign key columns alone do not).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, JSONType, UTCDateTime, utcnow

Uuid = String(36)
Email = String(320)
Phone = String(32)
# Two decimals, handed back as float; values are rounded to cents before they are compared.
Money = Numeric(14, 2, asdecimal=False)  # holds less than app.records.MONEY_MAX


def new_id() -> str:
    return str(uuid.uuid4())


class ContactType(StrEnum):
    owner = "owner"
    guest = "guest"


class ContactStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    suspended = "suspended"
    pending = "pending"


class PropertyLinkStatus(StrEnum):
    active = "active"
    pending = "pending"
    inactive = "inactive"


# A property's link to its owner follows the listing's approval (seed 000).
LINK_STATUS_BY_LISTING = {
    "approved": PropertyLinkStatus.active,
    "published": PropertyLinkStatus.active,
    "pending": PropertyLinkStatus.pending,
    "draft": PropertyLinkStatus.pending,
    "rejected": PropertyLinkStatus.inactive,
    "archived": PropertyLinkStatus.inactive,
}


def link_status_for(listing_status: str | None) -> PropertyLinkStatus:
    return LINK_STATUS_BY_LISTING.get(listing_status or "", PropertyLinkStatus.pending)


class EnquiryStatus(StrEnum):
    new = "new"
    contacted = "contacted"
    qualified = "qualified"
    converted = "converted"
    lost = "lost"


# new -> contacted -> qualified -> converted / lost; steps may be skipped, never undone.
_ENQUIRY_RANK = {"new": 0, "contacted": 1, "qualified": 2, "converted": 3, "lost": 3}


def enquiry_next_statuses(current: str) -> list[EnquiryStatus]:
    """The statuses an enquiry in `current` may move to: later ones only; converted and lost
    are final."""
    rank = _ENQUIRY_RANK.get(current, 0)
    return [s for s in EnquiryStatus if _ENQUIRY_RANK[s] > rank]


class NoteType(StrEnum):
    general = "general"
    follow_up = "follow_up"
    issue = "issue"
    opportunity = "opportunity"


class NotePriority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


def _contact_fk(ondelete: str) -> ForeignKey:
    return ForeignKey("crm_contacts.id", ondelete=ondelete)


class CrmContact(Base):
    """An owner (from the website's users) or a guest (found by email from enquiries)."""

    __tablename__ = "crm_contacts"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # website user id
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Email)
    phone: Mapped[str | None] = mapped_column(Phone)
    company_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(Text)
    signup_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    notes: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # Listing is newest first, optionally by type or status: keyset (created_at, id).
        Index("ix_crm_contacts_created", "created_at", "id"),
        Index("ix_crm_contacts_type_created", "type", "created_at", "id"),
        Index("ix_crm_contacts_status_created", "status", "created_at", "id"),
        Index("ix_crm_contacts_email", "email"),
        # One guest contact per email, so concurrent enquiries cannot make two.
        Index(
            "uq_crm_contacts_guest_email",
            "email",
            unique=True,
            sqlite_where=text("type = 'guest'"),
            postgresql_where=text("type = 'guest'"),
        ),
        # Substring search over name and email (ILIKE '%term%') on PostgreSQL: trigram GIN.
        Index(
            "ix_crm_contacts_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_crm_contacts_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class CrmProperty(Base):
    __tablename__ = "crm_properties"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(String(255), unique=True)  # website property id
    owner_contact_id: Mapped[str | None] = mapped_column(Uuid, _contact_fk("SET NULL"), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(Text)
    bedrooms: Mapped[int | None] = mapped_column(Integer)
    bathrooms: Mapped[int | None] = mapped_column(Integer)
    guests: Mapped[int | None] = mapped_column(Integer)
    price_per_night: Mapped[float | None] = mapped_column(Money)
    listing_status: Mapped[str | None] = mapped_column(String(16), index=True)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    slug: Mapped[str | None] = mapped_column(Text)
    main_image: Mapped[str | None] = mapped_column(Text)
    plan: Mapped[str | None] = mapped_column(String(64))
    enquiry_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[CrmContact | None] = relationship(lazy="raise")


class CrmPropertyLink(Base):
    """A property's link to its owner; its status follows the listing's approval."""

    __tablename__ = "crm_property_links"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_contact_id: Mapped[str] = mapped_column(Uuid, _contact_fk("CASCADE"))
    crm_property_id: Mapped[str] = mapped_column(
        Uuid, ForeignKey("crm_properties.id", ondelete="CASCADE"), index=True
    )
    link_status: Mapped[str] = mapped_column(String(16))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[CrmContact] = relationship(lazy="raise")
    property: Mapped[CrmProperty] = relationship(lazy="raise")

    # The unique pair also serves lookups by owner (its leading column).
    __table_args__ = (UniqueConstraint("owner_contact_id", "crm_property_id"),)


class CrmEnquiry(Base):
    __tablename__ = "crm_enquiries"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    enquiry_id: Mapped[str] = mapped_column(String(255), unique=True)  # website enquiry id
    crm_property_id: Mapped[str | None] = mapped_column(
        Uuid, ForeignKey("crm_properties.id", ondelete="SET NULL"), index=True
    )
    owner_contact_id: Mapped[str | None] = mapped_column(Uuid, _contact_fk("SET NULL"), index=True)
    guest_contact_id: Mapped[str | None] = mapped_column(Uuid, _contact_fk("SET NULL"), index=True)
    guest_name: Mapped[str | None] = mapped_column(Text)
    guest_email: Mapped[str | None] = mapped_column(Email)
    guest_phone: Mapped[str | None] = mapped_column(Phone)
    subject: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=EnquiryStatus.new)
    source: Mapped[str | None] = mapped_column(String(64))
    check_in: Mapped[date | None] = mapped_column(Date)
    check_out: Mapped[date | None] = mapped_column(Date)
    guests: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    property: Mapped[CrmProperty | None] = relationship(lazy="raise")
    owner: Mapped[CrmContact | None] = relationship(foreign_keys=[owner_contact_id], lazy="raise")
    guest: Mapped[CrmContact | None] = relationship(foreign_keys=[guest_contact_id], lazy="raise")

    __table_args__ = (
        Index("ix_crm_enquiries_created", "created_at", "id"),
        Index("ix_crm_enquiries_status_created", "status", "created_at", "id"),
    )


class CrmBooking(Base):
    __tablename__ = "crm_bookings"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    booking_id: Mapped[str] = mapped_column(String(255), unique=True)  # website booking id
    crm_property_id: Mapped[str | None] = mapped_column(
        Uuid, ForeignKey("crm_properties.id", ondelete="SET NULL"), index=True
    )
    owner_contact_id: Mapped[str | None] = mapped_column(Uuid, _contact_fk("SET NULL"), index=True)
    guest_contact_id: Mapped[str | None] = mapped_column(Uuid, _contact_fk("SET NULL"), index=True)
    guest_name: Mapped[str | None] = mapped_column(Text)
    guest_email: Mapped[str | None] = mapped_column(Email)
    guest_phone: Mapped[str | None] = mapped_column(Phone)
    check_in: Mapped[date | None] = mapped_column(Date)
    check_out: Mapped[date | None] = mapped_column(Date)
    guests: Mapped[int | None] = mapped_column(Integer)
    total_price: Mapped[float | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str | None] = mapped_column(String(32), index=True)
    payment_status: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    property: Mapped[CrmProperty | None] = relationship(lazy="raise")
    owner: Mapped[CrmContact | None] = relationship(foreign_keys=[owner_contact_id], lazy="raise")
    guest: Mapped[CrmContact | None] = relationship(foreign_keys=[guest_contact_id], lazy="raise")


class CrmMembership(Base):
    """An owner's membership (one per owner, keyed by the website user id like the record)."""

    __tablename__ = "crm_memberships"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(255), unique=True)  # website user id
    contact_id: Mapped[str] = mapped_column(Uuid, _contact_fk("CASCADE"), index=True)
    plan_tier: Mapped[str | None] = mapped_column(String(16), index=True)
    billing_cycle: Mapped[str | None] = mapped_column(String(32))
    plan_price: Mapped[float | None] = mapped_column(Money)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    renewal_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(16), index=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    last_payment_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_payment_amount: Mapped[float | None] = mapped_column(Money)
    next_payment_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    auto_renew: Mapped[bool | None] = mapped_column(Boolean)
    payment_failure_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact: Mapped[CrmContact] = relationship(lazy="raise")


class CrmNote(Base):
    __tablename__ = "crm_notes"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    note_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # from a note record
    contact_id: Mapped[str] = mapped_column(Uuid, _contact_fk("CASCADE"))
    note_type: Mapped[str] = mapped_column(String(16), default=NoteType.general)
    priority: Mapped[str] = mapped_column(String(16), default=NotePriority.medium)
    content: Mapped[str] = mapped_column(Text)
    reminder_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(255))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact: Mapped[CrmContact] = relationship(lazy="raise")

    __table_args__ = (Index("ix_crm_notes_contact_created", "contact_id", "created_at"),)


class CrmInteraction(Base):
    """A communication with a contact: an enquiry's message, a status change told to them."""

    __tablename__ = "crm_interactions"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(Uuid, _contact_fk("CASCADE"))
    crm_property_id: Mapped[str | None] = mapped_column(
        Uuid, ForeignKey("crm_properties.id", ondelete="SET NULL"), index=True
    )
    crm_enquiry_id: Mapped[str | None] = mapped_column(
        Uuid, ForeignKey("crm_enquiries.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))  # email/phone/message/note/status_change
    subject: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    direction: Mapped[str | None] = mapped_column(String(16))  # inbound/outbound
    initiated_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[CrmContact] = relationship(lazy="raise")
    property: Mapped[CrmProperty | None] = relationship(lazy="raise")
    enquiry: Mapped[CrmEnquiry | None] = relationship(lazy="raise")

    __table_args__ = (Index("ix_crm_interactions_contact_created", "contact_id", "created_at"),)


class CrmActivity(Base):
    """The audit trail: what happened to which CRM entity, about which contact, by whom."""

    __tablename__ = "crm_activity_log"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True, default=new_id)
    activity_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # activity record
    contact_id: Mapped[str | None] = mapped_column(Uuid, _contact_fk("SET NULL"))
    entity_type: Mapped[str] = mapped_column(String(32))  # contact/property/enquiry/...
    entity_id: Mapped[str | None] = mapped_column(String(255))
    activity_type: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    performed_by: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # soft-deleted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact: Mapped[CrmContact | None] = relationship(lazy="raise")

    __table_args__ = (
        Index("ix_crm_activity_log_contact_occurred", "contact_id", "occurred_at"),
        Index("ix_crm_activity_log_entity", "entity_type", "entity_id"),
    )
