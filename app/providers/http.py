"""What every HTTP adapter shares: one client, secrets scrubbed, transport and status failures
mapped to our ProviderError kinds at the edge, and a health flag for GET /api/crm/status."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from app.providers.base import FailureKind, Provider, ProviderError


def json_of(response: httpx.Response) -> Any:
    """The body as JSON, or the start of its text as a message."""
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError):
        return {"message": response.text[:500]}


def message_of(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("message", "error", "detail"):
            if payload.get(key):
                return str(payload[key])
    return str(payload)[:500]


class HttpProvider(Provider):
    label: ClassVar[str]  # the CRM's name in messages: "HubSpot"

    def __init__(self, client: httpx.AsyncClient, secrets: tuple[str, ...]) -> None:
        self._client = client
        self._secrets = tuple(s for s in secrets if s)
        self.healthy = True
        self.health_error: str | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The call itself; a timeout or a dropped connection becomes a ProviderError."""
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                FailureKind.timeout, f"{self.label}: no answer in time ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                FailureKind.transient,
                self._scrub(f"{self.label}: connection failed ({type(exc).__name__}: {exc})"),
            ) from None

    def _check_status(self, response: httpx.Response) -> httpx.Response:
        """Bad credentials mark the provider unhealthy (its jobs are held, not failed); 5xx is
        transient; any other status is the caller's to read."""
        status = response.status_code
        if status in (401, 403):
            payload = json_of(response)
            category = payload.get("category", "") if isinstance(payload, dict) else ""
            prefix = f"{self.label} {status} {category}".rstrip()
            message = self._scrub(f"{prefix}: {message_of(payload)}")
            self.healthy, self.health_error = False, message
            raise ProviderError(
                FailureKind.unauthorized, message, http_status=status, response=payload
            )
        if status >= 500:
            payload = json_of(response)
            raise ProviderError(
                FailureKind.transient,
                f"{self.label} {status}: {message_of(payload)}",
                http_status=status,
                response=payload,
            )
        self.healthy, self.health_error = True, None
        return response
