"""`crm-sync stripe ...`: look at and replay events in the webhook inbox."""

from __future__ import annotations

import asyncio
from enum import StrEnum

import typer

stripe_cli = typer.Typer(help="Stripe webhook events: list and replay.", no_args_is_help=True)


class ReplayStatus(StrEnum):
    unmatched = "unmatched"
    failed = "failed"
    ignored = "ignored"
    processed = "processed"


@stripe_cli.command()
def replay(
    status: ReplayStatus | None = typer.Option(
        None, "--status", help="replay every event with this status"
    ),
    ids: list[str] | None = typer.Option(
        None, "--id", help="an event to replay (our id or Stripe's evt_ id); repeatable"
    ),
) -> None:
    """Queue events for processing again; a running worker (serve or `crm-sync worker`)
    applies them. Applying an event twice is harmless."""
    from app.cli import _settings
    from app.db import make_engine, make_sessionmaker, transaction
    from app.webhooks import inbox
    from app.webhooks.models import EventStatus

    if status is None and not ids:
        typer.secho(
            "name the events: --status unmatched|failed or --id <event>", fg="red", err=True
        )
        raise typer.Exit(2)
    settings = _settings()

    async def main() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                return await inbox.replay(
                    session,
                    ids=ids or [],
                    status=EventStatus(status.value) if status else None,
                    by="crm-sync stripe replay",
                )
        finally:
            await engine.dispose()

    count = asyncio.run(main())
    typer.echo(f"{count} event{'s' if count != 1 else ''} queued for processing again")


@stripe_cli.command("events")
def list_events(
    status: str | None = typer.Option(None, help="received, processed, failed, unmatched, ignored"),
    limit: int = typer.Option(20, min=1, max=500),
) -> None:
    """The newest events in the inbox, with their status and reason."""
    from rich.console import Console
    from rich.table import Table

    from app.cli import _settings
    from app.db import make_engine, make_sessionmaker
    from app.webhooks import inbox
    from app.webhooks.models import EventStatus

    try:
        wanted = EventStatus(status) if status else None
    except ValueError:
        typer.secho(f"--status: unknown status {status!r}", fg="red", err=True)
        raise typer.Exit(2) from None
    settings = _settings()

    async def main() -> list[tuple[str, ...]]:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                rows = await inbox.list_events(session, status=wanted, limit=limit)
                return [
                    (str(r.id), r.external_id, r.type, r.status, r.owner_id or "", r.reason or "")
                    for r in rows
                ]
        finally:
            await engine.dispose()

    table = Table("id", "event", "type", "status", "owner", "reason")
    for row in asyncio.run(main()):
        table.add_row(*row)
    Console().print(table)
