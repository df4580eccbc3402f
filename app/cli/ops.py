"""`crm-sync bulk`, `retry`, `logs` and `purge-logs`: ops from a shell, against the database
directly (the same service code as the API; no API key needed, DATABASE_URL is the access)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from app.cli.common import fail, load_settings, quiet_logs
from app.errors import AppError
from app.settings import Settings

if TYPE_CHECKING:
    from app.sync.heartbeat import WorkerHeartbeat

log = logging.getLogger("app.cli")


class SyncTypeOpt(StrEnum):
    owners = "owners"
    properties = "properties"
    enquiries = "enquiries"
    bookings = "bookings"
    memberships = "memberships"
    all = "all"


class RetryStatusOpt(StrEnum):
    failed = "failed"
    dead = "dead"


class LogStatusOpt(StrEnum):
    success = "success"
    failed = "failed"
    skipped = "skipped"


def register(cli: typer.Typer) -> None:
    """Add the ops commands to the `crm-sync` command."""
    cli.command("bulk")(bulk)
    cli.command("retry")(retry)
    cli.command("logs")(logs)
    cli.command("purge-logs")(purge_logs)


# -- bulk ---------------------------------------------------------------------------------------


def bulk(
    sync_type: SyncTypeOpt = typer.Option(SyncTypeOpt.all, "--type", "-t", help="what to resync"),
    only_failed: bool = typer.Option(False, "--only-failed", help="only what a provider failed"),
    force: bool = typer.Option(False, "--force", help="send even what a CRM already confirmed"),
    provider: str | None = typer.Option(None, "--provider", help="one configured provider"),
    worker: bool | None = typer.Option(
        None,
        "--worker/--no-worker",
        help="deliver from this process too, or leave delivery to running workers "
        "(default: this process delivers only if no `crm-sync serve` or `crm-sync worker` "
        "is running against the database)",
        show_default=False,
    ),
    resume: str | None = typer.Option(None, "--resume", help="resume this bulk run here"),
    as_json: bool = typer.Option(False, "--json", help="print the final answer as JSON"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show info log lines"),
) -> None:
    """Resync stored records in bulk, with a live progress bar.

    Runs here, against the database: queues the jobs in chunks and waits for their delivery.
    A running `crm-sync serve` or `crm-sync worker` delivers them (so the counts are that
    worker's, to the CRMs it holds); with none running, this process delivers them itself.
    Exits 1 when some deliveries failed. Interrupted, the run is resumed by any running API
    process (or `--resume BULK_ID`).
    """
    settings = load_settings()
    # Each failed delivery is a warning line in the service's log; here the progress bar, the
    # table and `crm-sync logs` say it better.
    quiet_logs(settings, verbose, logging.ERROR)
    console = Console(stderr=as_json)
    deliver_here = _choose_delivery(console, settings, worker)

    async def main() -> dict[str, Any]:
        from app.db import transaction
        from app.main import open_services
        from app.ops.bulk import (
            PLURAL_OF,
            BulkRequest,
            BulkRunner,
            count_candidates,
            create_run,
            get_run,
            run_view,
            tally,
        )
        from app.records import Kind

        async with open_services(settings, with_loops=deliver_here, role="bulk") as services:
            runner = BulkRunner(
                services.sessions, settings.bulk, kick=services.kick, notifier=services.notifier
            )
            async with transaction(services.sessions) as session:
                if resume:
                    run = await get_run(session, resume)
                else:
                    request = BulkRequest(
                        syncType=sync_type.value,
                        onlyFailed=only_failed,
                        force=force,
                        provider=provider,
                    )
                    run = await create_run(
                        session, settings, request, runner=runner.name, requested_by="cli"
                    )
                totals = {
                    PLURAL_OF[Kind(k)]: await count_candidates(session, run, Kind(k))
                    for k in run.kinds
                }
            to = ", ".join(run.providers)
            console.print(f"bulk run [bold]{run.id}[/]: {run.sync_type} to {to}")
            task = asyncio.create_task(runner.run(run.id))
            columns = (
                TextColumn("{task.description:<12}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "[green]synced {task.fields[synced]}[/] [red]failed {task.fields[failed]}[/] "
                    "[dim]skipped {task.fields[skipped]}[/]"
                ),
                TimeElapsedColumn(),
            )
            bars: dict[str, TaskID] = {}
            interval = 0.5
            try:
                with Progress(*columns, console=console, transient=False) as progress:
                    for plural, total in totals.items():
                        bars[plural] = progress.add_task(
                            plural, total=total, synced=0, failed=0, skipped=0
                        )
                    while True:
                        started = time.monotonic()
                        async with services.sessions() as session:
                            results = await tally(session, await get_run(session, run.id))
                        for plural, row in results.items():
                            done = row["total"] - row["pending"]
                            progress.update(
                                bars[plural],
                                completed=done,
                                total=max(row["total"], totals[plural]),
                                synced=row["synced"],
                                failed=row["failed"],
                                skipped=row["skipped"],
                            )
                        if task.done():
                            break
                        # Counting a big run costs; never spend more than a fifth of the time on it.
                        interval = max(0.5, 5 * (time.monotonic() - started))
                        await asyncio.wait({task}, timeout=interval)
            except (KeyboardInterrupt, asyncio.CancelledError):
                task.cancel()
                raise
            await task
            async with services.sessions() as session:
                return await run_view(session, run.id)

    try:
        view = asyncio.run(main())
    except AppError as exc:
        raise fail(exc.message) from None
    except KeyboardInterrupt:
        typer.secho(
            "interrupted: the run will be resumed by a running API process "
            "(or run `crm-sync bulk --resume <bulkId>`)",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(view, indent=2))
    else:
        _print_results(console, view)
    raise typer.Exit(0 if view["success"] else 1)


def _choose_delivery(console: Console, settings: Settings, worker: bool | None) -> bool:
    """Whether this process delivers the run's jobs, said plainly. Two processes delivering
    one outbox each to its own mock would split the records between two memories and count
    creates twice; so by default a running worker delivers, and this process only when none
    is running."""
    running = [w for w in asyncio.run(_running_workers(settings)) if w.role != "bulk"]
    names = ", ".join(w.describe() for w in running)
    if worker is None:
        worker = not running
    say = functools.partial(console.print, soft_wrap=True)  # one line each, whatever the width
    if worker and running:
        say(f"delivering from this process and from the running worker(s): {names}")
    elif worker:
        say(
            "no `crm-sync serve` or `crm-sync worker` is running against this database: "
            "delivering from this process"
        )
    elif running:
        say(f"delivery by the running worker(s): {names}")
    else:
        say(
            "[yellow]--no-worker and no worker is running: the jobs wait until "
            "`crm-sync serve` or `crm-sync worker` starts[/]"
        )
    if worker and "mock" in settings.providers:
        say("[dim]the mock provider here is this process's own: what it stores ends with it[/]")
    return worker


async def _running_workers(settings: Settings) -> list[WorkerHeartbeat]:
    from app.db import engine_for, make_sessionmaker
    from app.sync.heartbeat import live_workers

    engine = engine_for(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            return await live_workers(session)
    finally:
        await engine.dispose()


def _print_results(console: Console, view: dict[str, Any]) -> None:
    table = Table(title=f"{view['bulkId']}: {view['message']}")
    columns = ("synced", "created", "updated", "failed", "skipped", "pending", "superseded")
    table.add_column("kind")
    for column in columns:
        table.add_column(column, justify="right")
    for plural, row in view["results"].items():
        table.add_row(plural, *(str(row[c]) for c in columns))
    console.print(table)


# -- retry --------------------------------------------------------------------------------------


def retry(
    status: RetryStatusOpt = typer.Option(..., "--status", help="failed (rejected) or dead"),
    entity_type: str | None = typer.Option(None, "--entity-type", help="owner, property, ..."),
    entity_id: str | None = typer.Option(None, "--entity-id", help="one record (website id)"),
    provider: str | None = typer.Option(None, "--provider", help="one configured provider"),
) -> None:
    """Requeue failed or dead jobs (attempts reset); running workers deliver them."""
    settings = load_settings()
    quiet_logs(settings, verbose=False)

    async def main() -> int:
        from app.db import engine_for, make_sessionmaker, transaction
        from app.ops.logs import check_provider, parse_kind, retry_jobs

        kind = parse_kind(entity_type, "--entity-type")
        check_provider(provider, settings.providers, "--provider")
        engine = engine_for(settings)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                return await retry_jobs(
                    session, [status.value], kind=kind, entity_id=entity_id, provider=provider
                )
        finally:
            await engine.dispose()

    try:
        requeued = asyncio.run(main())
    except AppError as exc:
        raise fail(exc.message) from None
    typer.echo(f"{requeued} {status.value} job(s) requeued")


# -- logs ---------------------------------------------------------------------------------------


def logs(
    entity_type: str | None = typer.Option(None, "--entity-type", help="owner, property, ..."),
    entity_id: str | None = typer.Option(None, "--entity-id", help="the website id"),
    provider: str | None = typer.Option(None, "--provider"),
    status: LogStatusOpt | None = typer.Option(None, "--status"),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 time or an age: 24h, 7d"),
    job_id: int | None = typer.Option(None, "--job-id"),
    bulk_id: str | None = typer.Option(None, "--bulk-id"),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    cursor: str | None = typer.Option(None, "--cursor", help="the nextCursor printed before"),
    as_json: bool = typer.Option(False, "--json", help="JSON with payloads, as the API answers"),
) -> None:
    """The sync log, newest first: a table, or JSON with the request and response payloads."""
    settings = load_settings()
    quiet_logs(settings, verbose=False)

    async def main() -> tuple[list[dict[str, Any]], str | None]:
        from app.db import engine_for, make_sessionmaker
        from app.models import LogStatus
        from app.ops.logs import (
            LogFilter,
            decode_cursor,
            find_logs,
            log_view,
            parse_kind,
            parse_since,
        )

        wanted = LogFilter(
            entity_type=parse_kind(entity_type, "--entity-type"),
            entity_id=entity_id,
            provider=provider,
            status=LogStatus(status.value) if status else None,
            since=parse_since(since, "--since") if since else None,
            job_id=job_id,
            bulk_id=bulk_id,
            limit=limit,
            before=decode_cursor(cursor) if cursor else None,
        )
        engine = engine_for(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                page = await find_logs(session, wanted)
                return [log_view(row) for row in page.rows], page.next_cursor
        finally:
            await engine.dispose()

    try:
        rows, next_cursor = asyncio.run(main())
    except AppError as exc:
        raise fail(exc.message) from None
    if as_json:
        typer.echo(json.dumps({"logs": rows, "nextCursor": next_cursor}, indent=2, default=str))
        return
    table = Table(show_lines=False)
    for column in ("id", "time", "provider", "record", "action", "status", "http", "job"):
        table.add_column(column, no_wrap=True)
    table.add_column("error", overflow="fold", ratio=1)
    styles = {"success": "green", "failed": "red", "skipped": "dim"}
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["createdAt"][:19].replace("T", " "),
            row["provider"],
            f"{row['entityType']}/{row['entityId']}",
            row["action"],
            f"[{styles.get(row['status'], '')}]{row['status']}[/]",
            str(row["httpStatus"] or ""),
            str(row["jobId"] or ""),
            (row["error"] or "")[:120],
        )
    console = Console()
    if not console.is_terminal:  # piped to a file or a pager: no reason to squeeze into 80
        console = Console(width=200)
    console.print(table)
    if next_cursor:
        console.print(f"older rows: --cursor {next_cursor}")


# -- purge-logs ---------------------------------------------------------------------------------


def purge_logs(
    older_than: str = typer.Option("90d", "--older-than", help="age: 90d, 12w, 36h"),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, help="rows per delete"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only count what would go"),
) -> None:
    """Delete sync-log rows older than an age (the seeds keep 90 days), in short batches."""
    settings = load_settings()
    quiet_logs(settings, verbose=False)

    async def main() -> tuple[int, int]:
        from app.db import engine_for, make_sessionmaker, utcnow
        from app.errors import InvalidInput
        from app.ops.logs import count_older, parse_age
        from app.ops.logs import purge_logs as purge

        try:
            cutoff = utcnow() - parse_age(older_than, "--older-than")
        except OverflowError:
            raise InvalidInput("--older-than", f"{older_than!r} reaches before year 1") from None
        engine = engine_for(settings)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session:
                total = await count_older(session, cutoff)
            if dry_run or not total:
                return total, 0
            with Progress(
                TextColumn("purging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            ) as progress:
                bar = progress.add_task("purge", total=total)
                deleted = await purge(
                    sessions,
                    cutoff,
                    batch_size=batch_size,
                    progress=lambda n: progress.advance(bar, n),
                )
            return total, deleted
        finally:
            await engine.dispose()

    try:
        total, deleted = asyncio.run(main())
    except AppError as exc:
        raise fail(exc.message) from None
    if dry_run:
        typer.echo(f"{total} sync-log row(s) older than {older_than} would be deleted")
    else:
        typer.echo(f"{deleted} sync-log row(s) older than {older_than} deleted")
