"""The webhook inbox (every verified event, stored once) and Stripe's per-owner applied state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow
from app.models import BigId


class EventStatus(StrEnum):
    received = "received"  # stored, waiting for the processor (again, after a replay)
    processed = "processed"  # its effects are in the records and the outbox
    failed = "failed"  # processing raised too often, or the body is unusable; replay by hand
    unmatched = "unmatched"  # names no owner we know; replayed when that owner is synced
    ignored = "ignored"  # a type (or a case of one) we have nothing to do for


class WebhookEvent(Base):
    """One event as delivered (signature header left out), and where its processing stands."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))  # Stripe's event id
    type: Mapped[str] = mapped_column(String(128))
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType)
    body: Mapped[str] = mapped_column(Text)  # exactly as received
    event_created: Mapped[datetime] = mapped_column(UTCDateTime)  # the event's own `created`
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.received)
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who the event is about, as far as it says: kept so an unmatched event can be found
    # again when that owner (or a membership with that customer) is synced.
    owner_id: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_webhook_events_due", "status", "run_after"),
        Index("ix_webhook_events_owner_id", "owner_id"),
        Index("ix_webhook_events_customer_id", "customer_id"),
    )


class StripeOwnerState(Base):
    """What Stripe events have been applied to one owner: for each field, the `created` of the
    event that last set it, so an older event never overwrites a newer state; and the failed
    payments already counted. Its row is also the per-owner lock while an event is applied."""

    __tablename__ = "stripe_owner_state"

    owner_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    applied: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    counted_failures: Mapped[list[str]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
