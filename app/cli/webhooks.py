"""`crm-sync events` (and `crm-sync stripe`, the same for Stripe alone): look at and replay the
webhook inbox."""

from __future__ import annotations

import asyncio
from enum import StrEnum

import typer

from app.cli.common import Typer, fail, load_settings


class SourceOpt(StrEnum):
    stripe = "stripe"
    hubspot = "hubspot"


class StatusOpt(StrEnum):
    received = "received"
    processed = "processed"
    failed = "failed"
    unmatched = "unmatched"
    ignored = "ignored"


def _replay(source: str | None, status: StatusOpt | None, ids: list[int] | None) -> None:
    from app.db import engine_for, make_sessionmaker, transaction
    from app.webhooks import inbox
    from app.webhooks.models import EventStatus

    if status is None and not ids:
        raise fail("name the events: --status unmatched|failed|... or --id <row id>")
    settings = load_settings()

    async def main() -> int:
        engine = engine_for(settings)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                return await inbox.replay(
                    session,
                    ids=ids or [],
                    status=EventStatus(status.value) if status else None,
                    source=source,
                    by="crm-sync",
                )
        finally:
            await engine.dispose()

    count = asyncio.run(main())
    typer.echo(f"{count} event{'s' if count != 1 else ''} queued for handling again")


def _list(source: str | None, status: StatusOpt | None, limit: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from app.db import engine_for, make_sessionmaker
    from app.webhooks import inbox
    from app.webhooks.models import EventStatus

    settings = load_settings()

    async def main() -> list[tuple[str, ...]]:
        engine = engine_for(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                rows = await inbox.list_events(
                    session,
                    source=source,
                    status=EventStatus(status.value) if status else None,
                    limit=limit,
                )
                return [
                    (
                        str(r.id),
                        r.source,
                        r.external_id,
                        r.type,
                        r.status,
                        r.owner_id or "",
                        r.reason or "",
                    )
                    for r in rows
                ]
        finally:
            await engine.dispose()

    table = Table("id", "source", "event", "type", "status", "owner", "reason")
    for row in asyncio.run(main()):
        table.add_row(*row)
    Console().print(table)


STATUS_HELP = "received, processed, failed, unmatched or ignored"
IDS_HELP = "an event's row id (the `id` column of `crm-sync events list`); repeatable"

events_cli = Typer(help="The webhook inbox (Stripe and HubSpot): list and replay.")
stripe_cli = Typer(help="Stripe's events in the webhook inbox: list and replay.")


@events_cli.command("list")
def list_all(
    source: SourceOpt | None = typer.Option(None, "--source", help="stripe or hubspot"),
    status: StatusOpt | None = typer.Option(None, "--status", help=STATUS_HELP),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
) -> None:
    """The newest events in the inbox, with their status and reason."""
    _list(source.value if source else None, status, limit)


@events_cli.command("replay")
def replay_any(
    source: SourceOpt | None = typer.Option(None, "--source", help="stripe or hubspot"),
    status: StatusOpt | None = typer.Option(None, "--status", help="replay all with it"),
    ids: list[int] | None = typer.Option(None, "--id", help=IDS_HELP),
) -> None:
    """Queue events for handling again; a running worker (serve or `crm-sync worker`) handles
    them. Handling an event twice is harmless."""
    _replay(source.value if source else None, status, ids)


@stripe_cli.command("events")
def list_stripe(
    status: StatusOpt | None = typer.Option(None, "--status", help=STATUS_HELP),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
) -> None:
    """The newest Stripe events in the inbox."""
    _list("stripe", status, limit)


@stripe_cli.command("replay")
def replay_stripe(
    status: StatusOpt | None = typer.Option(None, "--status", help="replay all with it"),
    ids: list[int] | None = typer.Option(None, "--id", help=IDS_HELP),
) -> None:
    """Queue Stripe events for handling again (e.g. --status unmatched)."""
    _replay("stripe", status, ids)
