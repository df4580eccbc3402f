"""What every HTTP adapter shares: one client per CRM whose `request` maps transport failures,
401/403, 429 and 5xx to our ProviderError kinds in one place, scrubs the CRM's secrets from every
message, and keeps a health flag for GET /api/crm/status."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.providers.base import FailureKind, ProviderError


def json_of(response: httpx.Response) -> Any:
    """The body as JSON, or the start of its text as a message."""
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError):
        return {"message": response.text[:500]}


def message_of(payload: Any) -> str:
    """A CRM's error message from its JSON body (`message`, `error` or `detail`)."""
    if isinstance(payload, dict):
        for key in ("message", "error", "detail"):
            if payload.get(key):
                return str(payload[key])
    return str(payload)[:500]


def seconds_header(value: str | None) -> float | None:
    """A Retry-After given in seconds (RFC 9110 also allows an HTTP date; CRMs send seconds)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 10**7 else None


class HttpClient:
    """An httpx client for one CRM. `request` returns the response for any status the caller
    should read (2xx, 4xx but 401/403/429) and raises ProviderError for the rest:

    - timeouts -> `timeout`; dropped connections -> `transient`;
    - 401/403 -> `unauthorized` (the provider is marked unhealthy, its jobs held);
    - 429 -> `rate_limited` with Retry-After (`rate_limited()` is the vendor's hook);
    - 5xx -> `transient`.
    """

    label = "CRM"  # the CRM's name in messages: "HubSpot"

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        secrets: tuple[str, ...],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._secrets = tuple(s for s in secrets if s)
        self.healthy = True
        self.health_error: str | None = None
        self.requests_sent = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    def scrub(self, text: str) -> str:
        """`text` with this CRM's credentials blanked."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ticket = await self.before_request(method, path)
        self.requests_sent += 1
        try:
            response = await self._client.request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(
                FailureKind.timeout, f"{self.label}: no answer in time ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                FailureKind.transient,
                self.scrub(f"{self.label}: connection failed ({type(exc).__name__}: {exc})"),
            ) from None
        finally:
            await self.after_request(ticket)
        await self.after_response(response)
        return await self._judge(response)

    async def before_request(self, method: str, path: str) -> Any:
        """Hook: wait for the CRM's rate limit; what it returns is given to `after_request`."""
        return None

    async def after_request(self, ticket: Any) -> None:
        """Hook: the request is over (answered or failed); `ticket` is `before_request`'s."""

    async def after_response(self, response: httpx.Response) -> None:
        """Hook: learn from the answer's headers (rate-limit counters)."""

    async def rate_limited(self, response: httpx.Response, payload: Any) -> ProviderError:
        """The error for a 429; vendors with several budgets override this."""
        retry_after = seconds_header(response.headers.get("retry-after"))
        return ProviderError(
            FailureKind.rate_limited,
            self.scrub(f"{self.label} 429: {message_of(payload)}"),
            retry_after=retry_after if retry_after is not None else 5.0,
            http_status=429,
            response=payload,
        )

    async def _judge(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 429:
            raise await self.rate_limited(response, json_of(response))
        if status in (401, 403):
            payload = json_of(response)
            category = payload.get("category", "") if isinstance(payload, dict) else ""
            prefix = f"{self.label} {status} {category}".rstrip()
            message = self.scrub(f"{prefix}: {message_of(payload)}")
            self.healthy, self.health_error = False, message
            raise ProviderError(
                FailureKind.unauthorized, message, http_status=status, response=payload
            )
        if status >= 500:
            payload = json_of(response)
            raise ProviderError(
                FailureKind.transient,
                self.scrub(f"{self.label} {status}: {message_of(payload)}"),
                http_status=status,
                response=payload,
            )
        self.healthy, self.health_error = True, None
        return response
