"""`crm-sync hubspot setup`: create crm-sync's property group and custom properties in the
HubSpot account (HUBSPOT_ACCESS_TOKEN, HUBSPOT_BASE_URL), from the same definitions the mapping
and the tests use (app/providers/hubspot/properties.py)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import typer

from app.cli.common import Typer, fail, load_settings
from app.providers.base import ProviderError

hubspot_cli = Typer(help="HubSpot account tasks: `setup` creates the custom properties.")


@hubspot_cli.command("setup")
def setup(
    check: bool = typer.Option(
        False, "--check", help="only report what is missing or differs; create nothing"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Create the `crm_sync` property group and every custom property crm-sync writes (type,
    fieldType, options, unique values) through HubSpot's properties API. Idempotent: what
    exists is left alone, and a property that exists with another type, fieldType, uniqueness
    or options is reported as drift (never changed). Exit codes: 0 everything as defined (or
    created now); 1 drift, or with --check anything missing; 2 HubSpot refused a call or the
    configuration is incomplete."""
    settings = load_settings()
    hubspot = settings.hubspot
    if hubspot.access_token is None:
        raise fail("HUBSPOT_ACCESS_TOKEN is not set")

    async def main() -> dict[str, list[str]]:
        from app.providers.hubspot.client import HubSpotClient
        from app.providers.hubspot.setup import run_setup
        from app.providers.ratelimit import LocalRateLimiter

        limiter = LocalRateLimiter("hubspot-setup", hubspot.rate_limit)
        client = HubSpotClient(hubspot, limiter)
        try:
            report = await run_setup(client, hubspot, check=check)
        finally:
            await client.aclose()
        return asdict(report)

    try:
        report = asyncio.run(main())
    except ProviderError as exc:
        raise fail(exc.message) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for label in report["created"]:
            typer.echo(f"created  {label}")
        for label in report["missing"]:
            typer.echo(f"missing  {label}")
        for label in report["drift"]:
            typer.secho(f"drift    {label}", fg="yellow")
        typer.echo(
            f"{len(report['created'])} created, {len(report['existing'])} as defined, "
            f"{len(report['missing'])} missing, {len(report['drift'])} drifted"
        )
    if report["drift"] or report["missing"]:
        raise typer.Exit(1)
