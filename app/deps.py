"""The dependencies routes take: the process's services, a unit of work, and API-key auth."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Unauthorized
from app.runtime import Services
from app.settings import ApiKey, Settings


async def get_services(request: Request) -> Services:
    """The process's services (async: a plain def would cost a thread hand-off per request)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """A request's unit of work: committed when the route returns, rolled back if it raises."""
    async with services.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def find_key(settings: Settings, presented: str) -> ApiKey | None:
    found = None
    for key in settings.keys:  # compare with every key, in constant time, to leak nothing
        if hmac.compare_digest(key.key.encode(), presented.encode()):
            found = key
    return found


class ApiKeyAuth(HTTPBearer):
    """The API-key check: admits keys of `scope` (`ops` keys may do everything); answers 401
    for a missing or unknown key and 403 for a key of the wrong scope, in the contract's error
    shape. Being an HTTPBearer, it puts the bearer scheme in the OpenAPI document (the
    Authorize button in /docs); being one dependency with no others under it, it costs the
    request path one call."""

    def __init__(self, scope: str) -> None:
        super().__init__(
            scheme_name="apiKey",
            description="An API_KEYS key: scope sync (the website) or ops (everything)",
            auto_error=False,
        )
        self.scope = scope

    async def __call__(self, request: Request) -> ApiKey | None:  # type: ignore[override]
        settings: Settings = request.app.state.services.settings
        if not settings.keys:  # development without keys: refused at start-up elsewhere
            return None
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip() if scheme.lower() == "bearer" else ""
        if not presented:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        key = find_key(settings, presented)
        if key is None:
            raise Unauthorized("invalid API key")
        if self.scope == "ops" and key.scope != "ops":
            raise Forbidden(f"API key {key.name!r} has scope {key.scope!r}; this needs 'ops'")
        request.state.api_key = key.name
        return key


SyncAuth = Depends(ApiKeyAuth("sync"))
OpsAuth = Depends(ApiKeyAuth("ops"))
