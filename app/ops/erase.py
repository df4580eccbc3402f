"""Erasure of a person (a data-subject request): a durable, resumable run, like a bulk run.

1. Accepted (one transaction): the records that name the person are found by email and/or user
   id (the owner, with their membership, notes and activities; the enquiries and bookings whose
   guest they are), the owner's side is marked deleted, and an `erase` job per record and
   provider is queued through the outbox (children first, retried, logged like any delivery).
   The run's row keeps who is being erased (emails, names, phones) until the end, so a run
   whose process died can be resumed.
2. Deleting: the run waits until every CRM answered (HubSpot GDPR-deletes the contacts; the
   internal CRM removes the rows; enquiries and bookings are kept with the guest blanked).
3. Scrubbing (one transaction): snapshots are reduced (the owner's to their ids; the guest
   records' without the guest), pulled leads with the email or phone removed, and every other
   occurrence in every table blanked (`scrub`). The run's row is then the audit row: a keyed
   hash of the email, counts per store and provider, times; no personal data.

This module holds the steps; `erase_runs` runs them to the end under a lease.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, model_validator
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound
from app.inputs import storable_text
from app.models import JobStatus, LinkStatus, Operation, ProviderLink, Record, SyncJob
from app.ops.logs import text_param
from app.ops.models import Erasure, ErasureStatus
from app.ops.scrub import Needles, scrub_everywhere
from app.pull.models import Lead
from app.records import SPECS, Kind, content_hash, without_guest
from app.settings import Settings
from app.sync.outbox import ACTIVE, enqueue, enqueue_delete
from app.times import iso

log = logging.getLogger(__name__)

OWNED = (Kind.membership.value, Kind.note.value, Kind.activity.value)  # the owner's own data
GUESTED = (Kind.enquiry.value, Kind.booking.value)


class EraseRequest(BaseModel):
    """The body of POST /api/crm/erase: the person, by email and/or website user id."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = Field(None, description="the person's email (owner or guest)")
    userId: (
        Annotated[str, Field(min_length=1, max_length=255), AfterValidator(storable_text)] | None
    ) = Field(None, description="the website user id of an owner")

    @model_validator(mode="after")
    def _someone(self) -> EraseRequest:
        if not self.email and not self.userId:
            raise ValueError("give email, userId or both")
        return self


def keyed_hash(key: str, value: str) -> str:
    """HMAC-SHA256 (hex) of a normalised identifier: stable for the same key, useless without."""
    normalised = value.strip().lower().encode()
    return hmac.new(key.encode(), normalised, hashlib.sha256).hexdigest()


async def create_erasure(
    session: AsyncSession,
    settings: Settings,
    request: EraseRequest,
    *,
    runner: str,
    requested_by: str | None = None,
) -> Erasure:
    """Find what names the person, mark and queue it (step 1); the run's row, leased to
    `runner`. Without ERASURE_HASH_KEY the run still erases; its audit row keeps no hashes
    (nothing to look the person up by later), since an unkeyed hash of an email is reversible."""
    key = settings.erasure_hash_key.get_secret_value() if settings.erasure_hash_key else None
    email = str(request.email).strip().lower() if request.email else None
    owner_match = [Record.data["email"].as_string() == email] if email else []
    if request.userId:
        owner_match.append(Record.external_id == request.userId)
    owners = list(
        await session.scalars(
            select(Record).where(Record.kind == Kind.owner.value, or_(*owner_match))
        )
    )
    emails = {e for e in [email, *(str(o.data.get("email") or "") for o in owners)] if e}
    guests = list(
        await session.scalars(
            select(Record).where(
                Record.kind.in_(GUESTED), Record.data["guestEmail"].as_string().in_(emails)
            )
        )
        if emails
        else []
    )
    owned = list(
        await session.scalars(
            select(Record).where(
                Record.kind.in_(OWNED),
                Record.parent_kind == Kind.owner.value,
                Record.parent_id.in_([o.external_id for o in owners]),
            )
        )
        if owners
        else []
    )
    names = [
        *(str(o.data.get(f) or "") for o in owners for f in ("name", "firstName", "lastName")),
        *(str(g.data.get("guestName") or "") for g in guests),
    ]
    phones = [str(r.data.get(f) or "") for r in owners + guests for f in ("phone", "guestPhone")]
    now = utcnow()
    doomed = [*owned, *owners]  # children first
    erasure = Erasure(
        id=f"erase_{now:%Y%m%d%H%M%S}_{secrets.token_hex(4)}",
        status=ErasureStatus.deleting.value,
        email_hash=keyed_hash(key, email or min(emails)) if key and emails else None,
        user_id_hash=keyed_hash(key, request.userId) if key and request.userId else None,
        subject={
            "emails": sorted(emails),
            "names": sorted({n for n in names if n}),
            "phones": sorted({p for p in phones if p}),
        },
        record_ids={"deleted": [r.id for r in doomed], "blanked": [r.id for r in guests]},
        counts={},
        providers={},
        requested_by=requested_by,
        runner=runner,
        lease_until=now + timedelta(seconds=settings.bulk.lease_seconds),
        created_at=now,
        started_at=now,
        updated_at=now,
    )
    session.add(erasure)
    if doomed:
        await session.execute(
            update(Record)
            .where(Record.id.in_([r.id for r in doomed]))
            .values(deleted_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    ids = [r.id for r in doomed + guests]
    await enqueue_delete(session, ids, settings.providers, Operation.erase, now=now)
    await session.flush()
    log.info(
        "erasure %s: %d owner record(s) to delete, %d guest record(s) to blank",
        erasure.id,
        len(doomed),
        len(guests),
    )
    return erasure


async def get_erasure(session: AsyncSession, erasure_id: str) -> Erasure:
    text_param(erasure_id, "erasureId")
    erasure = await session.get(Erasure, erasure_id)
    if erasure is None:
        raise NotFound(f"erasure {erasure_id} is not known here")
    return erasure


class ProviderCounts(BaseModel):
    erased: int = Field(description="records the CRM confirmed erased (or never had)")
    failed: int = Field(description="records the CRM refused, or gave up on (see the sync log)")
    pending: int = Field(description="still to be delivered")


class EraseAnswer(BaseModel):
    """An erasure's progress, then its audit: no personal data."""

    success: bool
    message: str
    erasureId: str
    status: str = Field(description="deleting, scrubbing or completed")
    emailHash: str | None = Field(description="HMAC-SHA256 of the email, keyed ERASURE_HASH_KEY")
    counts: dict[str, int] = Field(
        description="per store: records, leads, and rows scrubbed per table (sync_log, ...)"
    )
    providers: dict[str, ProviderCounts]
    error: str | None
    createdAt: str | None
    finishedAt: str | None
    statusUrl: str


def describe(erasure: Erasure) -> EraseAnswer:
    status = ErasureStatus(erasure.status)
    failed = sum(int(p.get("failed", 0)) for p in erasure.providers.values())
    if status is ErasureStatus.completed:
        message = (
            "Erasure completed"
            if not failed
            else f"Erasure completed; {failed} CRM deletion(s) failed (retry them from the log)"
        )
    else:
        last = f" (last attempt broke: {erasure.error}; it is resumed)" if erasure.error else ""
        message = f"Erasure in progress{last}"
    return EraseAnswer(
        success=status is ErasureStatus.completed and not failed,
        message=message,
        erasureId=erasure.id,
        status=status.value,
        emailHash=erasure.email_hash,
        counts={k: int(v) for k, v in erasure.counts.items()},
        providers={k: ProviderCounts(**v) for k, v in erasure.providers.items()},
        error=erasure.error,
        createdAt=iso(erasure.created_at),
        finishedAt=iso(erasure.finished_at),
        statusUrl=status_url(erasure.id),
    )


def status_url(erasure_id: str) -> str:
    return f"/api/crm/erase/{erasure_id}"


async def scrub_stores(
    session: AsyncSession, erasure: Erasure, settings: Settings
) -> dict[str, int]:
    """Step 3 in the caller's transaction: the snapshots reduced, the leads dropped, every other
    occurrence blanked. Returns rows changed per store. Safe to run again (a resumed run)."""
    subject = erasure.subject or {}
    ids = erasure.record_ids or {}
    counts: dict[str, int] = {}
    counts["records"] = await _reduce_deleted(session, ids.get("deleted", []))
    counts["records"] += await _blank_guests(session, ids.get("blanked", []), settings.providers)
    counts["leads"] = await _drop_leads(
        session, subject.get("emails", []), subject.get("phones", [])
    )
    needles = Needles.of(
        emails=subject.get("emails", []),
        names=subject.get("names", []),
        phones=subject.get("phones", []),
        region=settings.phone_default_region,
    )
    for table, n in (await scrub_everywhere(session, needles)).items():
        counts[table] = counts.get(table, 0) + n
    return counts


def all_ids(erasure: Erasure) -> list[int]:
    ids = erasure.record_ids or {}
    return [*ids.get("deleted", []), *ids.get("blanked", [])]


async def provider_counts(session: AsyncSession, record_ids: list[int]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    if not record_ids:
        return counts
    rows = await session.execute(
        select(SyncJob.provider, SyncJob.status, SyncJob.operation, func.count())
        .where(SyncJob.record_id.in_(record_ids))
        .group_by(SyncJob.provider, SyncJob.status, SyncJob.operation)
    )
    for provider, status, operation, n in rows:
        row = counts.setdefault(provider, {"erased": 0, "failed": 0, "pending": 0})
        if status in [s.value for s in ACTIVE]:
            row["pending"] += n
        elif status in (JobStatus.failed.value, JobStatus.dead.value):
            row["failed"] += n
        elif operation == Operation.erase.value:
            row["erased"] += n
    return counts


async def _reduce_deleted(session: AsyncSession, record_ids: list[int]) -> int:
    """The owner's deleted records keep only their ids (and their parent's)."""
    records = list(await session.scalars(select(Record).where(Record.id.in_(record_ids))))
    for record in records:
        spec = SPECS[Kind(record.kind)]
        kept = {
            f: record.data[f] for f in (spec.id_field, spec.parent_field) if f and f in record.data
        }
        record.data, record.content_hash = kept, content_hash(kept)
    return len(records)


async def _blank_guests(session: AsyncSession, record_ids: list[int], providers: list[str]) -> int:
    """Enquiries and bookings stay, without their guest; each provider that erased the guest
    holds exactly that now, so its link is synced to the blanked content."""
    records = list(await session.scalars(select(Record).where(Record.id.in_(record_ids))))
    erased = and_(
        ProviderLink.record_id.in_(record_ids), ProviderLink.status == LinkStatus.deleted.value
    )
    # A provider that never had the record (its create was still queued) has nothing: the
    # blanked record is queued for it below, as a create (only there: a provider that refused
    # the erasure keeps its failed job, to be retried).
    never = (
        await session.execute(
            delete(ProviderLink)
            .where(erased, ProviderLink.crm_id.is_(None))
            .returning(ProviderLink.record_id, ProviderLink.provider)
        )
    ).all()
    for record in records:
        blanked = without_guest(record.data)
        record.data, record.content_hash = blanked, content_hash(blanked)
        await session.execute(
            update(ProviderLink)
            .where(erased, ProviderLink.record_id == record.id)
            .values(
                status=LinkStatus.synced.value,
                confirmed_hash=record.content_hash,
                attempted_hash=record.content_hash,
            )
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    for provider in providers:
        again = [record_id for record_id, p in never if p == provider]
        if again:
            await enqueue(session, again, [provider])
    return len(records)


async def _drop_leads(session: AsyncSession, emails: list[str], phones: list[str]) -> int:
    """Pulled contacts with the person's email or phone go (their CRM ids with them)."""
    wanted = []
    if emails:
        wanted.append(Lead.email.in_(emails))
    if phones:
        wanted.append(Lead.phone.in_(phones))
    if not wanted:
        return 0
    result = await session.execute(
        delete(Lead).where(or_(*wanted)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
