"""Alembic environment: async engine, URL from the config or the app's settings."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from app import models  # noqa: F401 - registers the tables
from app.db import Base, make_engine
from app.ops import models as ops_models  # noqa: F401 - bulk_runs and the ops indexes
from app.providers import ratelimit  # noqa: F401 - rate-limit tables
from app.providers.internal import models as crm_models  # noqa: F401 - the internal CRM's tables
from app.pull import models as pull_models  # noqa: F401 - leads, cursors, pull runs
from app.sync import heartbeat  # noqa: F401 - worker_heartbeats
from app.webhooks import models as webhook_models  # noqa: F401

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from app.settings import Settings

    return Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = make_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
