"""`crm-sync ... --help` as a new user reads it, in a narrow terminal: flags read as flags and
every choice is spelled whole, for every command there is."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from app.cli.main import cli


def commands(group: TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def choices_of(path: tuple[str, ...]) -> list[str]:
    command = typer.main.get_command(cli)
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    found: list[str] = []
    for param in command.params:
        if isinstance(param, TyperOption) and param.type_descriptor.choices:
            found += [str(getattr(c, "value", c)) for c in param.type_descriptor.choices]
    return found


ALL = list(commands(typer.main.get_command(cli)))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "crm-sync")
def test_help_shows_flags_as_flags_and_choices_whole(path: tuple[str, ...]) -> None:
    shown = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "60"}, color=False)

    assert shown.exit_code == 0, shown.output
    assert "<bool>" not in shown.output
    for choice in choices_of(path):
        assert re.search(rf"\b{choice}\b", shown.output), f"{choice!r} split:\n{shown.output}"


def test_bulk_help_names_its_kinds_and_reads_its_flags_bare() -> None:
    shown = CliRunner().invoke(cli, ["bulk", "--help"], env={"COLUMNS": "60"}, color=False)

    assert re.search(r"--type\s+-t\s+TYPE\s", shown.output)
    assert re.search(r"--force\s+send even", shown.output)
    words = " ".join(line.strip(" │") for line in shown.output.splitlines())
    assert "owners, properties, enquiries, bookings, memberships or all" in " ".join(words.split())
