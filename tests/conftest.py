"""Every test runs twice: on SQLite and on a real PostgreSQL, both migrated by Alembic."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.db import Base, make_engine, make_sessionmaker
from app.main import create_app
from app.migrate import upgrade
from app.settings import DeliverySettings, MockSettings, Settings
from app.sync.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
# One database per checkout, so parallel work trees on one machine never share tables.
PG_DB = (
    os.environ.get("TEST_PG_DB")
    or "crm_sync_test_" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
)

SYNC_KEY = "test-sync-key-0123456789"
OPS_KEY = "test-ops-key-0123456789"
API_KEYS = f"website:sync:{SYNC_KEY},ops:ops:{OPS_KEY}"


async def _recreate_pg_database() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        await conn.close()
    host = PG_ADMIN.split("@", 1)[1].rsplit("/", 1)[0]
    user = PG_ADMIN.split("//", 1)[1].split("@", 1)[0]
    return f"postgresql+asyncpg://{user}@{host}/{PG_DB}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'crm_sync.db'}"
    else:
        url = asyncio.run(_recreate_pg_database())
    upgrade(url)
    return url


async def _empty_tables(url: str) -> None:
    engine = make_engine(url)
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if url.startswith("postgresql"):
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                await conn.execute(text(f"DELETE FROM {name}"))
    await engine.dispose()


@pytest.fixture
async def db_url(database_url: str) -> str:
    """The backend's URL, with every table emptied for this test."""
    await _empty_tables(database_url)
    return database_url


def make_settings(url: str, **overrides: Any) -> Settings:
    delivery = overrides.pop("delivery", {})
    mock = overrides.pop("mock", {})
    values: dict[str, Any] = {
        "database_url": url,
        "crm_providers": "mock",
        "api_keys": API_KEYS,
        "sync_wait_seconds": 3.0,
        "delivery": DeliverySettings(
            **{
                "backoff_base": 0.02,
                "backoff_max": 0.5,
                "poll_interval": 0.01,
                "breaker_cooldown": 0.05,
                "breaker_cooldown_max": 0.2,
                **delivery,
            }
        ),
        "mock": MockSettings(**mock),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _client(application: Any, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://test", headers=headers
    )


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The website: a `sync` key."""
    async with _client(app, SYNC_KEY) as c:
        yield c


@pytest.fixture
async def ops(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, OPS_KEY) as c:
        yield c


@pytest.fixture
def anonymous(app: Any) -> Callable[[str | None], httpx.AsyncClient]:
    return lambda key=None: _client(app, key)


@pytest.fixture
def services(app: Any) -> Any:
    return app.state.services


@pytest.fixture
def mock(services: Any) -> Any:
    return services.providers["mock"]


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Any]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def drain(worker: Worker, *, seconds: float = 10.0) -> None:
    """Run a worker until nothing is queued or running (failing the test if that takes long)."""
    async with asyncio.timeout(seconds):
        while True:
            if not await worker.run_once() and not await worker.pending():
                return
            await asyncio.sleep(0.005)


@pytest.fixture
def free_port() -> Iterator[Callable[[], int]]:
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    yield pick
