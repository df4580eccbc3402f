"""The one HubSpot client, shared by the push adapter and the pull: every call waits for the
shared rate limit, learns from HubSpot's rate-limit headers, and maps 429 (ten-secondly or daily),
401/403, 5xx and transport failures to our error kinds.

HubSpot's limits: https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
(429 bodies carry `policyName`: TEN_SECONDLY_ROLLING, SECONDLY, DAILY; the daily limit resets at
midnight in the account's time zone)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.providers.base import FailureKind, ProviderError
from app.providers.http import HttpClient, message_of, seconds_header
from app.providers.ratelimit import RateLimiter
from app.settings import HubSpotSettings


def seconds_to_midnight(timezone: str, now: datetime | None = None) -> float:
    """Seconds until the next midnight in `timezone`, when HubSpot's daily limit resets."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone))
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=local.tzinfo)
    return (midnight - local).total_seconds()


class HubSpotClient(HttpClient):
    """`request(method, path, json=...)` against HUBSPOT_BASE_URL with the private-app token."""

    label = "HubSpot"

    def __init__(
        self,
        settings: HubSpotSettings,
        limiter: RateLimiter,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        token = settings.access_token.get_secret_value() if settings.access_token else ""
        super().__init__(
            base_url=str(settings.base_url).rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=settings.timeout,
            secrets=(token,),
            transport=transport,
        )
        self.settings = settings
        self.limiter = limiter

    async def before_request(self) -> None:
        await self.limiter.acquire()

    async def after_response(self, response: httpx.Response) -> None:
        await self.limiter.observe(response.headers)

    async def rate_limited(self, response: httpx.Response, payload: Any) -> ProviderError:
        """DAILY waits until the account's midnight; a rolling-window 429 holds every worker
        for Retry-After (or one window)."""
        body = payload if isinstance(payload, dict) else {}
        policy = str(body.get("policyName", "")).upper()
        retry_after = seconds_header(response.headers.get("retry-after"))
        if policy == "DAILY":
            retry_after = retry_after or seconds_to_midnight(self.settings.account_timezone)
        else:
            retry_after = retry_after or self.limiter.window
            await self.limiter.hold(retry_after)
        return ProviderError(
            FailureKind.rate_limited,
            self.scrub(f"HubSpot 429 ({policy or 'rate limit'}): {message_of(body)}".strip()),
            retry_after=retry_after,
            http_status=429,
            response=payload,
        )

    async def check(self) -> bool:
        """Whether HubSpot answers our token (one cheap read)."""
        try:
            await self.request("GET", "/crm/v3/objects/contacts", params={"limit": "1"})
        except ProviderError:
            return False
        return True
