"""`crm-sync erase`: forget a person everywhere, from the shell (the same run as POST
/api/crm/erase, against the database; resumable with --resume)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from app.cli.common import fail, load_settings, quiet_logs
from app.errors import AppError


def erase(
    email: str | None = typer.Option(None, "--email", help="the person's email"),
    user_id: str | None = typer.Option(None, "--user-id", help="an owner's website user id"),
    resume: str | None = typer.Option(None, "--resume", help="resume this erasure here"),
    worker: bool = typer.Option(
        True,
        "--worker/--no-worker",
        help="also deliver the CRM deletions from this process (--no-worker when workers run)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the answer as JSON"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show info log lines"),
) -> None:
    """Erase a person: delete every record naming them at every CRM (HubSpot's GDPR delete for
    contacts), scrub them from every table here, and keep an audit row without personal data.
    Prints the counts per store; exits 1 if a CRM refused a deletion."""
    settings = load_settings()
    quiet_logs(settings, verbose, logging.ERROR)

    async def main() -> dict[str, Any]:
        from app.db import transaction
        from app.main import open_services
        from app.ops.erase import EraseRequest, create_erasure, describe, get_erasure
        from app.ops.erase_runs import ErasureRunner

        async with open_services(settings, with_loops=worker) as services:
            runner = ErasureRunner(services.sessions, settings, notifier=services.notifier)
            if resume:
                erasure_id = resume
            else:
                request = EraseRequest(email=email, userId=user_id)
                async with transaction(services.sessions) as session:
                    erasure = await create_erasure(
                        session, settings, request, runner=runner.name, requested_by="cli"
                    )
                erasure_id = erasure.id
                services.kick()
            if not await runner.run(erasure_id):
                raise fail(f"erasure {erasure_id} is being run by another process")
            async with services.sessions() as session:
                return describe(await get_erasure(session, erasure_id)).model_dump()

    try:
        answer = asyncio.run(main())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"{'.'.join(str(p) for p in first['loc']) or 'erase'}: {first['msg']}") from None
    except AppError as exc:
        raise fail(exc.message) from None
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    else:
        console = Console()
        console.print(f"{answer['message']} ({answer['erasureId']})")
        table = Table("store", "rows")
        for store, n in sorted(answer["counts"].items()):
            table.add_row(store, str(n))
        for provider, c in sorted(answer["providers"].items()):
            table.add_row(f"CRM {provider}", f"{c['erased']} erased, {c['failed']} failed")
        console.print(table)
    if not answer["success"]:
        raise typer.Exit(1)
