"""HEAD for every path that takes GET (RFC 9110 section 9.3.2): the GET runs and its status
and headers are answered, without the body. FastAPI routes serve only the methods they
declare, so without this a load balancer's or uptime check's HEAD /healthz gets a 405."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def serves_get(scope: Scope) -> bool:
    """Whether some route of the app in `scope` (set by Starlette before any middleware runs)
    takes GET at this request's path."""
    as_get = {**scope, "method": "GET"}
    return any(route.matches(as_get)[0] is Match.FULL for route in scope["app"].router.routes)


class HeadAsGet:
    """ASGI middleware: a HEAD request to a path with a GET route is run as that GET, and every
    body chunk of its answer is sent empty. Content-Length stays the GET's, as HEAD requires.
    A HEAD elsewhere is left alone, so it gets the usual 405 with its Allow header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not serves_get(scope):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
