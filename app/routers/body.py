"""Request bodies: every JSON body a route declares is read here first, strictly (app.inputs),
whatever its Content-Type says (ops type `curl -d '{...}'`, which sends form encoding unless
told otherwise); FastAPI then validates it against the route's model as usual.

A body that is not readable JSON is a 400 naming `body`; a value no store can hold (NUL, a lone
surrogate, nesting past app.inputs.MAX_DEPTH) a 422 naming its field. Every router here is an
`APIRouter(route_class=JsonBodyRoute)`, so a new route gets this by declaring its body model.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.errors import InvalidInput
from app.inputs import loads, problem

JSON = (b"content-type", b"application/json")


async def read_json(request: Request) -> Any:
    """The body's JSON value (an empty body reads as `{}`), every value storable. Raises
    UnreadableJson (400), InvalidInput (422 naming the field), or 413 past MAX_BODY_SIZE."""
    raw = await request.body()
    data = loads(raw) if raw.strip() else {}
    if found := problem(data):
        raise InvalidInput(*found)
    return data


class JsonBodyRoute(APIRoute):
    """A route whose declared body is read by read_json() before FastAPI sees it. Routes that
    read their body themselves (the batch endpoints, signed webhooks) declare none and are
    left alone."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def read_first(request: Request) -> Response:
            data = await read_json(request)
            # FastAPI takes the parsed value only from a request that says it is JSON.
            headers = [(k, v) for k, v in request.scope["headers"] if k != JSON[0]]
            parsed = Request({**request.scope, "headers": [*headers, JSON]}, request.receive)
            parsed._body = await request.body()
            parsed._json = data
            return await handler(parsed)

        return read_first


def example_body(**examples: Any) -> dict[str, Any]:
    """`openapi_examples` for a Body(): each keyword a named example value."""
    return {name: {"summary": name.replace("_", " "), "value": v} for name, v in examples.items()}
