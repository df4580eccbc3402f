"""Committing pulled pages: each page merged and the cursor moved in one transaction, the next
page fetched meanwhile, and a page the database refuses merged contact by contact so one
contact never stops a pull."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import is_postgres, utcnow
from app.pull.hubspot import modified_at
from app.pull.merge import Merger
from app.pull.models import PullCursor

log = logging.getLogger(__name__)
ANALYZE_AFTER_PAGES = frozenset({2, 8, 32, 128, 512})


async def lock(session: AsyncSession, provider: str) -> None:
    """One merge at a time per provider (PostgreSQL; SQLite's BEGIN IMMEDIATE already is)."""
    if is_postgres(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"crm-sync:pull:{provider}"},
        )


async def cursor_of(session: AsyncSession, provider: str) -> datetime | None:
    row = await session.get(PullCursor, provider)
    return row.modified_at if row else None


async def advance_cursor(session: AsyncSession, provider: str, newest: datetime) -> None:
    row = await session.get(PullCursor, provider)
    if row is None:
        session.add(PullCursor(provider=provider, modified_at=newest, updated_at=utcnow()))
    elif newest > row.modified_at:
        row.modified_at, row.updated_at = newest, utcnow()


async def ahead(pages: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """`pages`, with the next page already being fetched while the caller merges this one, so
    the search budget is spent while answers are written, not after."""

    async def following() -> Any:
        return await pages.__anext__()

    upcoming = asyncio.ensure_future(following())
    try:
        while True:
            try:
                page = await upcoming
            except StopAsyncIteration:
                return
            upcoming = asyncio.ensure_future(following())
            yield page
    finally:
        if not upcoming.done():
            upcoming.cancel()
        with contextlib.suppress(BaseException):
            await upcoming
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()


def refused(exc: DBAPIError) -> str:
    """Why the database refused a contact, without the statement or its values."""
    return f"the database refused it ({type(exc.orig).__name__ if exc.orig else 'error'})"


async def merge_page(
    sessions: async_sessionmaker[AsyncSession],
    merger: Merger,
    provider: str,
    page: list[dict[str, Any]],
    *,
    analyze: bool = False,
    advance: bool = True,
) -> None:
    """Merge one page and (if `advance`) move the cursor in one transaction. If the database
    refuses the page, its contacts are merged one per transaction and any it still refuses is
    skipped with the reason (counted and listed), so one contact never stops the pull."""
    saved = copy.deepcopy(merger.result)
    try:
        await _commit(sessions, merger, provider, page, analyze=analyze, advance=advance)
        return
    except DBAPIError as exc:
        if unreachable(exc):
            raise
        log.warning("pull from %s: page refused (%s); merging one by one", provider, refused(exc))
    merger.result = saved
    for contact in page:
        before = copy.deepcopy(merger.result)
        try:
            await _commit(sessions, merger, provider, [contact], advance=advance)
        except DBAPIError as exc:
            if unreachable(exc):
                raise
            merger.result = before
            merger.result.fetched += 1
            merger.result.skip(str(contact.get("id")), refused(exc))
    newest = max((m for c in page if (m := modified_at(c)) is not None), default=None)
    if advance and newest is not None:
        async with sessions() as session, session.begin():
            await lock(session, provider)
            await advance_cursor(session, provider, newest)


def unreachable(exc: DBAPIError) -> bool:
    """A lost connection is an outage (the caller answers 503), not a contact's fault."""
    return bool(exc.connection_invalidated)


async def _commit(
    sessions: async_sessionmaker[AsyncSession],
    merger: Merger,
    provider: str,
    page: list[dict[str, Any]],
    *,
    analyze: bool = False,
    advance: bool = True,
) -> None:
    async with sessions() as session, session.begin():
        await lock(session, provider)
        newest = await merger.merge(session, page)
        if advance and newest is not None:
            await advance_cursor(session, provider, newest)
        if analyze and is_postgres(session):
            # A first pull grows `leads` from nothing within minutes, before autovacuum looks:
            # without fresh statistics PostgreSQL keeps seq-scanning the growing table for
            # every page's lookups (measured: 25,000 contacts 54 s, against 8 s with this).
            await session.execute(text("ANALYZE leads, lead_crm_ids"))
