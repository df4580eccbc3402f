"""Merging pulled CRM contacts into leads: dedupe by CRM id, then E.164 phone, then lower-cased
email; strategies `overwrite` (the CRM's values win) and `append` (fill only empty fields).
A contact matching two different leads is a conflict: reported, never guessed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import ProviderLink, Record
from app.pull.hubspot import modified_at, parse_time
from app.pull.models import Lead, LeadCrmId
from app.records import Kind, content_hash, normalise_phone

# Fields a contact sets on its lead (compared and copied by the strategies).
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_raw",
    "company",
    "crm_status",
    "crm_stage",
    "crm_owner",
    "crm_last_activity_at",
)
SKIP_SAMPLES = 200  # skips listed one by one in a result (all are counted by reason)
# The sizes of the lead's bounded columns (the free-text ones are TEXT): a contact with a value
# past one (an email longer than any address can be) is skipped with the field named.
SIZES: dict[str, int] = {
    column.name: int(length)
    for column in Lead.__table__.columns
    if (length := getattr(column.type, "length", None))
}
CRM_ID_SIZE = int(getattr(LeadCrmId.__table__.c.crm_id.type, "length", 64) or 64)


def _too_long(p: Pulled) -> str | None:
    """The reason a contact cannot be stored as it is (a value past its column's size)."""
    if len(p.crm_id) > CRM_ID_SIZE:
        return f"crm id longer than {CRM_ID_SIZE} characters"
    for name, size in SIZES.items():
        value = p.values.get(name)
        if isinstance(value, str) and len(value) > size:
            return f"{name} longer than {size} characters"
    return None


class Strategy(StrEnum):
    append = "append"
    overwrite = "overwrite"
    preview = "preview"


@dataclass(slots=True)
class Pulled:
    """One CRM contact, read into the lead's terms."""

    crm_id: str
    values: dict[str, Any]
    properties: dict[str, Any]
    modified: datetime | None
    hash: str
    archived: bool


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _storable(value: Any) -> Any:
    """`value` as every store can hold it: without NUL characters, which PostgreSQL's text and
    JSONB refuse, and with lone surrogates (`\\ud800`, which no UTF-8 store can encode) as
    `?`; JSON allows both, so HubSpot can send them. Strings inside lists and dicts too."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def read_hubspot(contact: dict[str, Any], region: str) -> Pulled:
    props = {
        k: v for k, v in _storable(contact.get("properties") or {}).items() if v not in (None, "")
    }
    raw_phone = _text(props.get("phone")) or _text(props.get("mobilephone"))
    phone = None
    if raw_phone:
        try:
            phone = normalise_phone(raw_phone, region)
        except ValueError:
            phone = None  # kept as phone_raw; not used for dedupe
    email = _text(props.get("email"))
    values = {
        "first_name": _text(props.get("firstname")),
        "last_name": _text(props.get("lastname")),
        "email": email.lower() if email else None,
        "phone": phone,
        "phone_raw": raw_phone,
        "company": _text(props.get("company")),
        "crm_status": _text(props.get("hs_lead_status")),
        "crm_stage": _text(props.get("lifecyclestage")),
        "crm_owner": _text(props.get("hubspot_owner_id")),
        "crm_last_activity_at": parse_time(props.get("notes_last_updated")),
    }
    # The hash leaves out the bookkeeping HubSpot changes on every write.
    hashed = {k: v for k, v in props.items() if k not in ("lastmodifieddate", "hs_object_id")}
    return Pulled(
        crm_id=_storable(str(contact["id"])),
        values=values,
        properties=props,
        modified=modified_at(contact),
        hash=content_hash(hashed),
        archived=bool(contact.get("archived")),
    )


@dataclass
class MergeResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    fetched: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skips: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, crm_id: str, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] += 1
        if reason != "unchanged" and len(self.skips) < SKIP_SAMPLES:
            self.skips.append({"crmId": crm_id, "reason": reason})

    def view(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "fetched": self.fetched,
            "skipReasons": dict(self.reasons),
            "skips": self.skips,
            "conflicts": self.conflicts,
        }


class Merger:
    """Merges pages of contacts from one CRM, keeping totals across pages."""

    def __init__(self, source: str, strategy: Strategy, region: str) -> None:
        self.source = source
        self.strategy = strategy
        self.region = region
        self.result = MergeResult()

    async def merge(self, session: AsyncSession, contacts: list[dict[str, Any]]) -> datetime | None:
        """Merge one page in the caller's transaction; returns its newest modification time."""
        pulled = [read_hubspot(c, self.region) for c in contacts]
        self.result.fetched += len(pulled)
        newest = max((p.modified for p in pulled if p.modified), default=None)
        if not pulled:
            return newest
        ids = [p.crm_id for p in pulled]
        known = {
            row.crm_id: row
            for row in await session.scalars(
                select(LeadCrmId).where(
                    LeadCrmId.crm_source == self.source, LeadCrmId.crm_id.in_(ids)
                )
            )
        }
        phones = {p.values["phone"] for p in pulled if p.values["phone"]}
        emails = {p.values["email"] for p in pulled if p.values["email"]}
        lead_ids = {row.lead_id for row in known.values()}
        conditions = [Lead.id.in_(lead_ids)] if lead_ids else []
        if phones:
            conditions.append(Lead.phone.in_(phones))
        if emails:
            conditions.append(Lead.email.in_(emails))
        leads: dict[int, Lead] = {}
        if conditions:
            # A lead folded into another by a merge is no candidate: its survivor is.
            wanted = select(Lead).where(or_(*conditions), Lead.merged_into_id.is_(None))
            leads = {lead.id: lead for lead in await session.scalars(wanted)}
        by_phone: dict[str, set[int]] = {}
        by_email: dict[str, set[int]] = {}
        for lead in leads.values():
            self._index(lead, by_phone, by_email)
        ours = await self._our_records(session, ids)
        # Leads made in this page are drafts under a negative key until one bulk insert gives
        # them ids; links are (CRM id -> lead key) until then.
        drafts: dict[int, SimpleNamespace] = {}
        new_links: dict[str, SimpleNamespace] = {}
        now = utcnow()

        for p in pulled:
            if p.archived:
                self.result.skip(p.crm_id, "archived in the CRM")
                continue
            values = p.values
            if not (
                values["first_name"] or values["last_name"] or values["email"] or values["phone"]
            ):
                self.result.skip(p.crm_id, "no name, email or phone")
                continue
            if too_long := _too_long(p):
                self.result.skip(p.crm_id[:CRM_ID_SIZE], too_long)
                continue
            link: Any = known.get(p.crm_id) or new_links.get(p.crm_id)
            target: Any = None
            key = 0
            if link is not None:
                key = link.lead_id
                target = drafts.get(key) or leads.get(key) or await session.get(Lead, key)
                if link.content_hash == p.hash and not getattr(target, "deleted_at", None):
                    self.result.skip(p.crm_id, "unchanged")
                    continue
            else:
                by_p = by_phone.get(values["phone"], set()) if values["phone"] else set()
                by_e = by_email.get(values["email"], set()) if values["email"] else set()
                matches = by_p | by_e
                if len(matches) > 1:
                    self._conflict(p, by_p, by_e, leads, drafts)
                    continue
                if matches:
                    key = next(iter(matches))
                    target = leads.get(key) or drafts.get(key)
            if target is None:
                key = -(len(drafts) + 1)
                drafts[key] = SimpleNamespace(
                    crm_source=self.source,
                    crm_id=p.crm_id,
                    **values,
                    lead_type=None,
                    crm_description=None,
                    crm_owner_email=None,
                    crm_modified_at=p.modified,
                    record_id=ours.get(p.crm_id),
                    deleted_at=None,
                    merged_into_id=None,
                    properties=p.properties,
                    content_hash=p.hash,
                    last_crm_sync_at=now,
                    created_at=now,
                    updated_at=now,
                )
                self._index(drafts[key], by_phone, by_email, key)
                new_links[p.crm_id] = SimpleNamespace(lead_id=key, content_hash=p.hash)
                self.result.created += 1
                continue
            changed = self._apply(target, p)
            if target.deleted_at is not None and target.merged_into_id is None:
                target.deleted_at = None  # HubSpot has the contact again (restored)
                changed = True
            if link is None:
                link = new_links[p.crm_id] = SimpleNamespace(lead_id=key, content_hash=p.hash)
            link.content_hash = p.hash
            if target.record_id is None and ours.get(p.crm_id):
                target.record_id = ours[p.crm_id]
                changed = True
            if changed:
                target.updated_at = target.last_crm_sync_at = now
                self._index(target, by_phone, by_email, key)
                self.result.updated += 1
            else:
                reason = (
                    "unchanged"
                    if self.strategy is Strategy.overwrite
                    else "append keeps the values already here"
                )
                self.result.skip(p.crm_id, reason)
        ids_of: dict[int, int] = {}
        if drafts:
            rows = [vars(d) for d in drafts.values()]
            # Matched back by CRM id (one per draft): asking for parameter order would make
            # SQLite insert row by row.
            made = await session.execute(insert(Lead).returning(Lead.id, Lead.crm_id), rows)
            key_of = {d.crm_id: k for k, d in drafts.items()}
            ids_of = {key_of[crm_id]: lead_id for lead_id, crm_id in made.all()}
        if new_links:
            await session.execute(
                insert(LeadCrmId),
                [
                    {
                        "crm_source": self.source,
                        "crm_id": crm_id,
                        "lead_id": ids_of.get(link.lead_id, link.lead_id),
                        "content_hash": link.content_hash,
                    }
                    for crm_id, link in new_links.items()
                ],
            )
        await session.flush()
        return newest

    def _apply(self, lead: Any, p: Pulled) -> bool:
        """Copy the contact's values by the strategy; True if anything changed."""
        changed = False
        for name in FIELDS:
            value = p.values[name]
            if value is None:
                continue  # an empty CRM field never blanks what we have
            current = getattr(lead, name)
            if current == value or (self.strategy is Strategy.append and current is not None):
                continue
            setattr(lead, name, value)
            changed = True
        if changed or self.strategy is Strategy.overwrite:
            if p.modified and (lead.crm_modified_at is None or p.modified > lead.crm_modified_at):
                lead.crm_modified_at = p.modified
            if changed:
                lead.properties = {**(lead.properties or {}), **p.properties}
                lead.content_hash = p.hash
        return changed

    @staticmethod
    def _index(
        lead: Any,
        by_phone: dict[str, set[int]],
        by_email: dict[str, set[int]],
        key: int | None = None,
    ) -> None:
        key = key if key is not None else lead.id
        if lead.phone:
            by_phone.setdefault(lead.phone, set()).add(key)
        if lead.email:
            by_email.setdefault(lead.email, set()).add(key)

    def _conflict(
        self,
        p: Pulled,
        by_phone: set[int],
        by_email: set[int],
        leads: dict[int, Lead],
        drafts: dict[int, SimpleNamespace],
    ) -> None:
        def name(key: int) -> Any:
            lead: Any = leads.get(key) or drafts.get(key)
            made = getattr(lead, "id", None)
            return made if made is not None else f"new:{lead.crm_id if lead else key}"

        self.result.conflicts.append(
            {
                "crmId": p.crm_id,
                "byPhone": sorted(str(name(k)) for k in by_phone),
                "byEmail": sorted(str(name(k)) for k in by_email),
                "reason": "matches more than one lead; left for a person to decide",
            }
        )
        self.result.skip(p.crm_id, "conflict: matches more than one lead")

    async def _our_records(self, session: AsyncSession, crm_ids: list[str]) -> dict[str, str]:
        """CRM ids that are contacts we pushed: crm id -> the website's owner id."""
        rows = await session.execute(
            select(ProviderLink.crm_id, Record.external_id)
            .join(Record, Record.id == ProviderLink.record_id)
            .where(
                ProviderLink.provider == self.source,
                ProviderLink.crm_id.in_(crm_ids),
                Record.kind == Kind.owner.value,
            )
        )
        return {str(crm_id): external_id for crm_id, external_id in rows.all()}
