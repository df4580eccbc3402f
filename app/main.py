"""The FastAPI app and the process's running parts: services made in lifespan, the background
loops (delivery worker, webhook inbox, pull schedule, bulk runs), routers mounted."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.db import engine_for, make_sessionmaker
from app.errors import (
    BodyLimit,
    ErrorResponse,
    UncodedBodiesOnly,
    error_body,
    install_handlers,
)
from app.logs import RequestIdMiddleware, setup_logging
from app.ops.bulk import BulkRunner, BulkRuns
from app.ops.erase_runs import ErasureRunner, Erasures
from app.providers.ratelimit import RateLimitHit  # noqa: F401 - registers its tables
from app.providers.registry import ProviderContext, build_providers
from app.pull.service import PullScheduler, source_for
from app.pull.webhook import HubSpotHandler
from app.redaction import Redactor, secret_values
from app.routers import (
    activity,
    bulk,
    crm,
    erase,
    health,
    logs,
    metrics,
    mock,
    pull,
    status,
    sync,
    webhooks,
)
from app.routers.head import HeadAsGet
from app.runtime import LogThrottle, Poller, Services, is_outage
from app.settings import Settings
from app.sync.heartbeat import Heartbeat
from app.sync.worker import Worker
from app.ui import routes as ui
from app.webhooks.inbox import Handler, InboxProcessor
from app.webhooks.stripe_handler import StripeHandler

log = logging.getLogger("app")


def inbox_handlers(services: Services) -> list[Handler]:
    """A handler per webhook source this process can act on (HubSpot's needs HubSpot)."""
    handlers: list[Handler] = [StripeHandler(services.sessions, services.settings)]
    if "hubspot" in services.providers:
        contacts = source_for(services.providers, "hubspot", services.settings)
        handlers.append(HubSpotHandler(services.sessions, contacts, services.settings))
    return handlers


def background_loops(
    services: Services, *, concurrency: int = 4, role: str = "serve"
) -> list[Poller]:
    """The delivery worker, the webhook inbox, the pull schedule and the worker's heartbeat
    (as `role`), wired to wake each other: accepting a record wakes the worker, a webhook wakes
    the inbox, applied events wake the worker again."""
    settings = services.settings
    worker = Worker(
        services.sessions,
        services.providers,
        settings.delivery,
        notifier=services.notifier,
        concurrency=concurrency,
    )
    inbox = InboxProcessor(
        services.sessions,
        inbox_handlers(services),
        poll_interval=settings.delivery.poll_interval,
        on_enqueued=worker.wake,
    )
    schedule = PullScheduler(services.sessions, services.providers, settings)
    heartbeat = Heartbeat(services.sessions, role=role, providers=list(services.providers))
    services.wake_delivery, services.wake_inbox = worker.wake, inbox.wake
    services.loops = {"worker": worker, "inbox": inbox, "schedule": schedule}
    return [worker, inbox, schedule, heartbeat]


@asynccontextmanager
async def open_services(
    settings: Settings, *, with_loops: bool, role: str = "serve"
) -> AsyncIterator[Services]:
    """Engine, providers and (optionally) the background loops, their heartbeat saying `role`,
    closed in reverse on exit."""
    engine = engine_for(settings)
    sessions = make_sessionmaker(engine)
    providers = build_providers(ProviderContext(settings=settings, sessions=sessions))
    services = Services(settings=settings, engine=engine, sessions=sessions, providers=providers)
    stop = asyncio.Event()
    tasks = []
    if with_loops:
        for loop in background_loops(services, role=role):
            tasks.append(asyncio.create_task(loop.run(stop), name=loop.label))
    try:
        yield services
    finally:
        stop.set()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        for provider in providers.values():
            await provider.aclose()
        await engine.dispose()


def bulk_runs_for(services: Services) -> BulkRuns:
    """Bulk runs started here, and the sweep that resumes runs whose process died."""
    runner = BulkRunner(
        services.sessions, services.settings.bulk, kick=services.kick, notifier=services.notifier
    )
    return BulkRuns(runner)


def erasures_for(services: Services) -> Erasures:
    """Erasures started here, and the sweep that resumes those whose process died."""
    runner = ErasureRunner(services.sessions, services.settings, notifier=services.notifier)
    return Erasures(runner, services.kick)


GC_YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest generation
OUTAGE_RETRY_AFTER = 5  # seconds: a PostgreSQL restart or failover takes a few


def install_outage_answers(app: FastAPI) -> None:
    """The database away (refused, reset, timed out): 503 with Retry-After, the connection kept
    alive, and one log line per kind of failure a minute (app.runtime.LogThrottle), not a
    traceback a request. Recovery needs no restart: the pool pings before reuse.

    Handled here rather than by the catch-all: Starlette hands `Exception` handlers to its
    outermost middleware, which answers and then re-raises, so the server logs the error again
    and closes the connection."""
    quiet = LogThrottle(60.0)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_outage(exc):  # a bug (a constraint, a type): 500, logged with its traceback
            log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            return ErrorResponse(error_body("internal error"), 500)
        quiet.exception(log, "database unavailable: answering 503", exc)
        return ErrorResponse(
            error_body(
                f"the database is unavailable; retry after {OUTAGE_RETRY_AFTER} seconds",
                retryAfter=OUTAGE_RETRY_AFTER,
            ),
            503,
            headers={"Retry-After": str(OUTAGE_RETRY_AFTER)},
        )

    # OSError: refused and reset sockets, timeouts; asyncpg's own errors reach here from the
    # accept path's fast lane, which calls the driver directly (app.sync.accept_new).
    for kind in (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(kind, unavailable)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.keys:
            log.warning("API_KEYS is empty: authentication is OFF (development only)")
        async with (
            open_services(settings, with_loops=settings.worker_in_process) as services,
            bulk_runs_for(services).running() as bulk_runs,
            erasures_for(services).running() as erasures,
        ):
            app.state.services = services
            app.state.bulk_runs = bulk_runs
            app.state.erasures = erasures
            log.info(
                "crm-sync ready: providers %s, worker %s",
                ",".join(settings.providers),
                "in process" if settings.worker_in_process else "separate",
            )
            # What start-up built lives as long as the process: out of the collector's way, so
            # a full collection under load walks only what requests allocate; and the youngest
            # generation collected every GC_YOUNG_THRESHOLD allocations rather than 700, so
            # bursts pause less often (measured: accept p99 52 -> 34 ms, bench_accept).
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
            yield

    app = FastAPI(
        title="crm-sync",
        version="0.1.0",
        description="Keeps CRMs in step with the holiday-rental website.",
        lifespan=lifespan,
    )
    install_handlers(app, Redactor(secret_values(settings)))
    install_outage_answers(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, limit=int(settings.max_body_size))
    app.add_middleware(UncodedBodiesOnly)
    app.add_middleware(RequestIdMiddleware)
    for module in (
        health,
        sync,
        status,
        mock,
        bulk,
        logs,
        activity,
        metrics,
        webhooks,
        pull,
        crm,
        erase,
        ui,
    ):
        for router in module.routers:
            app.include_router(router)
    return app
