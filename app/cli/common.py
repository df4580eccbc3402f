"""What every subcommand shares: settings read once with a clear error, quiet logs under a
progress bar, a red message with exit code 2 for bad input, and help that reads as a person
expects (`Typer` and `Command`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

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


def _readable(params: list[Any]) -> list[Any]:
    """Help that reads as a person expects, whatever the terminal width (idempotent):

    - a flag is shown as a flag (`--force`), with no value type beside it (typer labels it
      `<bool>`, as if it took a value);
    - a choice option shows a short placeholder (`--type TYPE`) and lists its choices in the
      help text, where lines break between words (typer's `<owners|properties|...>` is one
      token, folded mid-word in a narrow column); choices the help already names are not
      repeated.
    """
    for param in params:
        if not isinstance(param, typer.core.TyperOption) or param.metavar is not None:
            continue
        if param.is_flag:
            param.metavar = ""
        elif choices := _choices(param):
            param.metavar = param.opts[0].lstrip("-").replace("-", "_").upper()
            if not all(choice in (param.help or "") for choice in choices):
                listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
                param.help = f"{param.help}: {listed}" if param.help else listed
    return params


class Command(TyperCommand):
    """A command with readable help (see `_readable`); its docstring's paragraphs are reflowed
    to the terminal (typer keeps the source's line breaks after the first paragraph), except
    one starting with `\\b`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = _reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))


class Group(TyperGroup):
    """A command group with readable help (see `_readable`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))


class Typer(typer.Typer):
    """`typer.Typer` made of `Group` and `Command`s unless told otherwise."""

    def __init__(self, *, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(cls=cls or Group, **kwargs)

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or Command, **kwargs)


def _choices(param: typer.core.TyperOption) -> list[str]:
    found = getattr(getattr(param, "type_descriptor", None), "choices", None) or ()
    return [str(c.value) if isinstance(c, Enum) else str(c) for c in found]


def _reflow(text: str) -> str:
    paragraphs = text.split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)
