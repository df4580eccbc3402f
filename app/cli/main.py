"""The `crm-sync` command: serve, worker, migrate, pull, the fakes; ops and webhook groups are
added from their modules."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from app.cli import ops as ops_cli
from app.cli.common import Typer, load_settings
from app.cli.erase import erase as erase_command
from app.cli.hubspot import hubspot_cli
from app.cli.webhooks import events_cli, stripe_cli
from app.times import iso

cli = Typer(help="crm-sync: keeps CRMs in step with the website.", no_args_is_help=True)
cli.add_typer(events_cli, name="events", no_args_is_help=True)
cli.add_typer(stripe_cli, name="stripe", no_args_is_help=True)
cli.add_typer(hubspot_cli, name="hubspot", no_args_is_help=True)
log = logging.getLogger("app.cli")


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
) -> None:
    """Run the API (and, by default, the delivery worker). Migrates an embedded SQLite first."""
    import uvicorn

    from app.main import create_app
    from app.migrate import upgrade

    settings = load_settings()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


@cli.command()
def worker(
    drain: bool = typer.Option(False, help="exit once nothing is queued or running"),
    concurrency: int = typer.Option(4, min=1, help="batches in flight at once"),
) -> None:
    """Run a delivery worker, with the Stripe event processor and the scheduled pull beside it
    (any number may run against PostgreSQL; one pull runs per period among them)."""
    from app.logs import setup_logging
    from app.main import background_loops, open_services

    settings = load_settings()
    setup_logging(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with open_services(settings, with_loops=False) as services:
            loops = background_loops(services, concurrency=concurrency, role="worker")
            worker, inbox, _schedule, _heartbeat = loops
            if drain:  # events first: applying them queues the jobs the worker then drains
                await inbox.run(stop, drain=True)
                await worker.run(stop, drain=True)
            else:
                await asyncio.gather(*(loop.run(stop) for loop in loops))

    asyncio.run(main())


@cli.command()
def workers(
    here: bool = typer.Option(
        False, "--here", help="only this host's; exit 1 if none (a container's health check)"
    ),
) -> None:
    """The processes delivering the outbox now (`crm-sync serve` with its in-process worker,
    `crm-sync worker`s), from the heartbeat each beats every few seconds."""
    import socket

    from app.db import engine_for, make_sessionmaker
    from app.sync.heartbeat import LIVE_SECONDS, live_workers

    settings = load_settings()
    host = socket.gethostname() if here else None

    async def main() -> list[str]:
        engine = engine_for(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                found = await live_workers(session, host=host)
        finally:
            await engine.dispose()
        return [
            f"{w.describe()}: delivering to {', '.join(w.providers)} since "
            f"{iso(w.started_at)}, last beat {iso(w.beat_at)}"
            for w in found
        ]

    lines = asyncio.run(main())
    for line in lines:
        typer.echo(line)
    if not lines:
        where = f" on {host}" if host else ""
        typer.echo(f"no worker{where} has beaten in the last {LIVE_SECONDS:g} s")
        raise typer.Exit(1 if here else 0)


@cli.command("pull")
def pull_command(
    provider: str = typer.Option("hubspot", help="the CRM to pull contacts from"),
    strategy: str = typer.Option(
        None, help="overwrite, append or preview (default: PULL_STRATEGY)", show_default=False
    ),
) -> None:
    """Pull contacts changed in the CRM since the last pull and merge them into leads."""
    import json

    from app.errors import AppError
    from app.logs import setup_logging
    from app.main import open_services
    from app.pull.merge import Strategy
    from app.pull.service import pull, source_for

    settings = load_settings()
    setup_logging(settings)
    try:
        chosen = Strategy(strategy or settings.pull.strategy)
    except ValueError:
        typer.secho("--strategy: choose overwrite, append or preview", fg="red", err=True)
        raise typer.Exit(2) from None

    async def main() -> dict[str, object]:
        async with open_services(settings, with_loops=False) as services:
            source = source_for(services.providers, provider, settings)
            outcome = await pull(
                services.sessions, source, settings, strategy=chosen, trigger="cli"
            )
            return outcome.view() | {"provider": provider, "strategy": chosen.value}

    try:
        result = asyncio.run(main())
    except AppError as exc:
        typer.secho(f"pull failed: {exc.message}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, indent=2))


@cli.command()
def migrate(revision: str = typer.Argument("head")) -> None:
    """Bring the database schema up to date (alembic upgrade)."""
    from app.migrate import upgrade

    upgrade(load_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@cli.command("fake-hubspot")
def fake_hubspot(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8090, help="port to listen on"),
    rate_limit: int = typer.Option(100, min=1, help="requests per rolling 10 s"),
    search_limit: int = typer.Option(5, min=1, help="search requests per second (HubSpot: 5)"),
    token: str | None = typer.Option(
        None, envvar="FAKE_HUBSPOT_TOKEN", help="the only token accepted (default: any)"
    ),
    bare: bool = typer.Option(
        False,
        "--bare",
        help="start with HubSpot's own properties only (run `crm-sync hubspot setup` against "
        "it); default: crm-sync's custom properties exist already",
    ),
) -> None:
    """A local fake HubSpot, as strict as HubSpot (property definitions, types, options, dates
    at midnight UTC, deleted and merged objects, 5 searches a second): CRM v3 objects and
    properties, v4 associations, rate limits, faults at /_fake."""
    import uvicorn

    from app.fakes.hubspot import create_app

    typer.echo(
        f"fake HubSpot on http://{host}:{port} ({rate_limit} requests per 10 s, "
        f"{search_limit} searches per second)"
    )
    app = create_app(rate_limit, token, search_limit, seeded=not bare)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@cli.command("fake-treadsoft")
def fake_treadsoft(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8091, help="port to listen on"),
    key: str | None = typer.Option(None, envvar="FAKE_TREADSOFT_KEY", help="accepted API key"),
    secret: str | None = typer.Option(
        None, envvar="FAKE_TREADSOFT_SECRET", help="accepted X-API-Secret"
    ),
) -> None:
    """A local fake TreadSoft (/api/v1/contacts|properties|enquiries|bookings, faults at /_fake)."""
    import uvicorn

    from app.fakes.treadsoft import create_app

    typer.echo(f"fake TreadSoft on http://{host}:{port}")
    uvicorn.run(create_app(key, secret), host=host, port=port, log_level="warning")


ops_cli.register(cli)  # bulk, retry, logs, purge-logs
cli.command("erase")(erase_command)


def main() -> None:
    cli()
