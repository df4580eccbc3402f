"""The one HubSpot client, shared by the push adapter and the pull: every call waits for each
budget it spends (the ten-secondly rolling one; the search endpoints' own per-second one; the
daily one), learns from HubSpot's rate-limit headers, and maps 429 (by its policyName), 401/403,
5xx and transport failures to our error kinds.

HubSpot's limits: https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
(429 bodies carry `policyName`: TEN_SECONDLY_ROLLING, SECONDLY, DAILY; the daily limit resets at
midnight in the account's time zone). The search endpoints: "rate limited to five requests per
second per account" (https://developers.hubspot.com/docs/api-reference/search/guide, Limits)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.providers.base import FailureKind, ProviderError
from app.providers.http import HttpClient, message_of, seconds_header
from app.providers.ratelimit import Grant, LocalRateLimiter, RateLimiter
from app.settings import HubSpotSettings


def is_search(path: str) -> bool:
    """Whether `path` is a CRM search endpoint (`/crm/v3/objects/{type}/search`), which spends
    the per-second search budget."""
    return path.split("?", 1)[0].rstrip("/").endswith("/search")


def seconds_to_midnight(timezone: str, now: datetime | None = None) -> float:
    """Seconds until the next midnight in `timezone`, when HubSpot's daily limit resets."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone))
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=local.tzinfo)
    return (midnight - local).total_seconds()


class HubSpotClient(HttpClient):
    """`request(method, path, json=...)` against HUBSPOT_BASE_URL with the private-app token.

    `limiter` paces HubSpot's ten-secondly rolling budget (every call); `search_limiter` its
    per-second search budget (search calls spend both: the conservative reading, since HubSpot's
    pages do not say whether searches also count in the ten-secondly window). The daily budget
    is kept by HubSpot's `X-HubSpot-RateLimit-Daily-Remaining`: at 0, or on a DAILY 429, both
    limiters hold every worker until the account's midnight. Each grant is settled when its
    answer comes back, so windows are spaced from the latest moment HubSpot can have counted
    the call."""

    label = "HubSpot"

    def __init__(
        self,
        settings: HubSpotSettings,
        limiter: RateLimiter,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        search_limiter: RateLimiter | None = None,
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
        self.search_limiter = search_limiter or LocalRateLimiter(
            "hubspot-search",
            settings.search_rate_limit,
            window=1.0,
            margin=settings.search_rate_margin,
        )

    async def before_request(self, method: str, path: str) -> list[tuple[RateLimiter, Grant]]:
        grants = []
        if is_search(path):
            grants.append((self.search_limiter, await self.search_limiter.reserve()))
        grants.append((self.limiter, await self.limiter.reserve()))
        return grants

    async def after_request(self, ticket: list[tuple[RateLimiter, Grant]]) -> None:
        for limiter, grant in ticket:
            await limiter.settle(grant)

    async def after_response(self, response: httpx.Response) -> None:
        await self.limiter.observe(response.headers)
        if _int(response.headers.get("x-hubspot-ratelimit-daily-remaining")) == 0:
            await self._hold_for_the_day()

    async def _hold_for_the_day(self, seconds: float | None = None) -> float:
        wait = seconds or seconds_to_midnight(self.settings.account_timezone)
        await self.limiter.hold(wait)
        await self.search_limiter.hold(wait)
        return wait

    async def rate_limited(self, response: httpx.Response, payload: Any) -> ProviderError:
        """The budget the 429 names holds every worker: DAILY until the account's midnight (or
        Retry-After), SECONDLY the search budget for Retry-After (or one second), the
        ten-secondly one for Retry-After (or one window)."""
        body = payload if isinstance(payload, dict) else {}
        policy = str(body.get("policyName", "")).upper()
        retry_after = seconds_header(response.headers.get("retry-after"))
        if policy == "DAILY":
            retry_after = await self._hold_for_the_day(retry_after)
        elif policy == "SECONDLY":
            retry_after = retry_after or self.search_limiter.window
            await self.search_limiter.hold(retry_after)
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


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
