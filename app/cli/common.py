"""What every subcommand shares: settings read once with a clear error, quiet logs under a
progress bar, and a red message with exit code 2 for bad input."""

from __future__ import annotations

import logging

import typer

from app.settings import Settings


def load_settings() -> Settings:
    """The settings from the environment (and .env); a configuration error says which, and
    exits 2, instead of a traceback."""
    try:
        return Settings()
    except Exception as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def quiet_logs(settings: Settings, verbose: bool, level: int = logging.WARNING) -> None:
    """Log lines would tear through a live progress bar and bury the answer: only `level` and
    above, unless --verbose."""
    from app.logs import setup_logging

    setup_logging(settings)
    if not verbose:
        logging.getLogger().setLevel(level)


def fail(message: str) -> typer.Exit:
    """Print `message` in red on stderr; raise the returned Exit (code 2)."""
    typer.secho(message, fg="red", err=True)
    return typer.Exit(2)
