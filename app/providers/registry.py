"""The provider registry: a plain dict from name to factory, built from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.providers.base import Provider
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What a factory may use: settings, and this service's database (for `internal`)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]


Factory = Callable[[ProviderContext], Provider]


def _hubspot(ctx: ProviderContext) -> Provider:
    from app.providers.hubspot.provider import HubSpotProvider
    from app.providers.ratelimit import make_rate_limiter

    hs = ctx.settings.hubspot
    if hs.access_token is None:
        raise RuntimeError("CRM_PROVIDERS names hubspot: set HUBSPOT_ACCESS_TOKEN")
    limiter = make_rate_limiter(ctx.sessions, "hubspot", hs.rate_limit, margin=hs.rate_margin)
    search = make_rate_limiter(
        ctx.sessions,
        "hubspot-search",
        hs.search_rate_limit,
        window=1.0,
        margin=hs.search_rate_margin,
    )
    return HubSpotProvider(hs, limiter, search_limiter=search)


def _treadsoft(ctx: ProviderContext) -> Provider:
    from app.providers.treadsoft import TreadSoftProvider

    ts = ctx.settings.treadsoft
    missing = [
        name
        for name, value in (
            ("CRM_API_URL", ts.url),
            ("CRM_API_KEY", ts.key),
            ("CRM_API_SECRET", ts.secret),
        )
        if value is None
    ]
    if missing:
        raise RuntimeError(f"CRM_PROVIDERS names treadsoft: set {', '.join(missing)}")
    return TreadSoftProvider(ts)


def _mock(ctx: ProviderContext) -> Provider:
    from app.providers.mock import MockProvider

    return MockProvider(ctx.settings.mock)


def _internal(ctx: ProviderContext) -> Provider:
    from app.providers.internal.provider import InternalProvider

    return InternalProvider(ctx.sessions)


FACTORIES: dict[str, Factory] = {
    "mock": _mock,
    "internal": _internal,
    "hubspot": _hubspot,
    "treadsoft": _treadsoft,
}


def build_providers(ctx: ProviderContext) -> dict[str, Provider]:
    missing = [n for n in ctx.settings.providers if n not in FACTORIES]
    if missing:
        raise RuntimeError(f"CRM_PROVIDERS names providers not built into this version: {missing}")
    return {name: FACTORIES[name](ctx) for name in ctx.settings.providers}
