"""Alembic, driven from code: `crm-sync migrate`, `serve` on the embedded default, and tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parent.parent


def _migrations_dir() -> Path:
    for base in (Path.cwd(), ROOT):
        if (base / "migrations" / "env.py").exists():
            return base / "migrations"
    raise RuntimeError("migrations/ not found: run from the project folder")


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
