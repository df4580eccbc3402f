"""The FastAPI app: services made in lifespan, routers mounted, errors answered as JSON."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from app.crm.router import router as crm_router
from app.db import make_engine, make_sessionmaker
from app.deps import Services
from app.errors import install_handlers
from app.logs import RequestIdMiddleware, setup_logging
from app.ops.bulk import BulkRunner, BulkRuns
from app.providers import ProviderContext, build_providers
from app.providers.ratelimit import RateLimitHit  # noqa: F401 - registers its tables
from app.pull.service import PullScheduler
from app.routers import bulk, health, logs, metrics, mock, pull, status, stripe_webhooks, sync
from app.settings import Settings
from app.sync.worker import Worker
from app.webhooks.stripe_processor import StripeProcessor

log = logging.getLogger("app")


@asynccontextmanager
async def open_services(settings: Settings, *, with_worker: bool) -> AsyncIterator[Services]:
    """Engine, providers and (optionally) the delivery worker, closed in reverse on exit."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    providers = build_providers(ProviderContext(settings=settings, sessions=sessions))
    services = Services(settings=settings, engine=engine, sessions=sessions, providers=providers)
    stop = asyncio.Event()
    tasks = []
    if with_worker:
        services.worker = Worker(sessions, providers, settings.delivery, notifier=services.notifier)
        tasks.append(asyncio.create_task(services.worker.run(stop), name="delivery-worker"))
        services.stripe = StripeProcessor(sessions, settings, on_enqueued=services.kick)
        tasks.append(asyncio.create_task(services.stripe.run(stop), name="stripe-processor"))
        puller = PullScheduler(sessions, providers, settings)
        tasks.append(asyncio.create_task(puller.run(stop), name="pull-scheduler"))
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.keys:
            log.warning("API_KEYS is empty: authentication is OFF (development only)")
        async with (
            open_services(settings, with_worker=settings.worker_in_process) as services,
            bulk_runs_for(services).running() as bulk_runs,
        ):
            app.state.services = services
            app.state.bulk_runs = bulk_runs
            log.info(
                "crm-sync ready: providers %s, worker %s",
                ",".join(settings.providers),
                "in process" if settings.worker_in_process else "separate",
            )
            yield

    app = FastAPI(
        title="crm-sync",
        version="0.1.0",
        description="Keeps CRMs in step with the holiday-rental website.",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(sync.router)
    app.include_router(status.router)
    app.include_router(mock.router)
    app.include_router(bulk.router)
    app.include_router(logs.router)
    app.include_router(metrics.router)
    app.include_router(crm_router)
    app.include_router(stripe_webhooks.router)
    app.include_router(stripe_webhooks.ops_router)
    app.include_router(pull.router)
    app.include_router(pull.webhook_router)
    return app
