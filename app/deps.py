"""The dependencies routes take: the process's services, a unit of work, and API-key auth."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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


# The OpenAPI document's bearer scheme (the Authorize button in /docs). It only reads the
# header: `require` answers a missing or wrong key itself, in the contract's error shape.
bearer = HTTPBearer(
    scheme_name="apiKey",
    description="An API_KEYS key: scope sync (the website) or ops (everything)",
    auto_error=False,
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require(scope: str):  # type: ignore[no-untyped-def]
    """A dependency admitting keys of `scope`; `ops` keys may do everything. Answers 401 for a
    missing or unknown key and 403 for a key of the wrong scope."""

    # async: a plain def would run in the thread pool, a thread hand-off on every request.
    async def check(
        request: Request, services: ServicesDep, credentials: BearerDep
    ) -> ApiKey | None:
        settings = services.settings
        if not settings.keys:  # development without keys: refused at start-up elsewhere
            return None
        presented = credentials.credentials.strip() if credentials else ""
        if not presented:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        key = find_key(settings, presented)
        if key is None:
            raise Unauthorized("invalid API key")
        if scope == "ops" and key.scope != "ops":
            raise Forbidden(f"API key {key.name!r} has scope {key.scope!r}; this needs 'ops'")
        request.state.api_key = key.name
        return key

    return Depends(check)


SyncAuth = require("sync")
OpsAuth = require("ops")
