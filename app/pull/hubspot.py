"""HubSpot contacts as a pull source: changed since a time (CRM search, ascending, `after` paging,
re-anchored past the 10,000-result cap) and read by id (batch read, for webhooks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from app.providers.base import FailureKind, ProviderError
from app.providers.hubspot.client import HubSpotClient
from app.providers.hubspot.mapping import CONTACT_USER_ID

SEARCH_PATH = "/crm/v3/objects/contacts/search"
READ_PATH = "/crm/v3/objects/contacts/batch/read"
# HubSpot's search returns at most 10,000 results for one query; paging past that is a 400.
SEARCH_CAP = 10_000
READ_BATCH = 100
PROPERTIES = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "company",
    "hubspot_owner_id",
    "hs_lead_status",
    "lifecyclestage",
    "notes_last_updated",
    "lastmodifieddate",
    "createdate",
    CONTACT_USER_ID,
]


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def modified_at(contact: dict[str, Any]) -> datetime | None:
    """A contact's last modification, from `lastmodifieddate` (or the object's updatedAt)."""
    raw = (contact.get("properties") or {}).get("lastmodifieddate") or contact.get("updatedAt")
    return parse_time(raw)


def parse_time(raw: Any) -> datetime | None:
    """HubSpot writes datetimes as ISO 8601 or as epoch milliseconds."""
    if raw in (None, ""):
        return None
    text = str(raw)
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):  # not a time, or past what a datetime holds
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class HubSpotContacts:
    """Reads contacts through the HubSpotClient the push uses, so the shared budgets (the search
    endpoints' per-second one included) and its error mapping (429, 401, 5xx) apply to pulls
    exactly as to pushes.

    A 429 is HubSpot asking us to wait, not a failure: the client holds the budget it names
    for Retry-After and the same request is sent again, up to `max_wait` seconds of waits for
    one request; past that (the daily budget spent) the 429's ProviderError is raised."""

    provider_name = "hubspot"

    def __init__(
        self, client: HubSpotClient, page_size: int = 200, max_wait: float = 120.0
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.max_wait = max_wait
        self.requests = 0
        self.rate_limited = 0  # 429s met (and waited out)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        waited = 0.0
        while True:
            self.requests += 1
            try:
                response = await self.client.request("POST", path, json=body)
                break
            except ProviderError as exc:
                if exc.kind is not FailureKind.rate_limited:
                    raise
                self.rate_limited += 1
                waited += exc.retry_after if exc.retry_after is not None else 1.0
                if waited > self.max_wait:
                    raise
                # The client has put the hold on the budget: the next request waits it out.
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text[:500]}
        if response.status_code >= 400 and response.status_code != 404:
            raise ProviderError(
                FailureKind.rejected,
                f"HubSpot {response.status_code}: {payload.get('message', '')}",
                http_status=response.status_code,
                response=payload,
            )
        return payload if isinstance(payload, dict) else {}

    def _search_body(self, since_ms: int, after: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": str(since_ms),
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": PROPERTIES,
            "limit": self.page_size,
        }
        if after is not None:
            body["after"] = after
        return body

    async def changed_since(self, since: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of contacts modified at or after `since`, oldest first. Before paging would
        pass the cap, the search starts again from the last modification time seen (ids
        already given at that instant are left out, so nothing comes twice)."""
        anchor = to_ms(since)
        after: str | None = None
        newest = anchor
        at_newest: set[str] = set()  # ids already yielded whose modification time is `newest`
        while True:
            payload = await self._post(SEARCH_PATH, self._search_body(anchor, after))
            results = [r for r in payload.get("results") or [] if str(r.get("id")) not in at_newest]
            for contact in results:
                stamp = modified_at(contact)
                ms = to_ms(stamp) if stamp else newest
                if ms > newest:
                    newest, at_newest = ms, set()
                if ms == newest:
                    at_newest.add(str(contact["id"]))
            if results:
                yield results
            following = ((payload.get("paging") or {}).get("next") or {}).get("after")
            if not following:
                return
            if int(following) + self.page_size <= SEARCH_CAP:
                after = str(following)
                continue
            if newest == anchor:
                raise ProviderError(
                    FailureKind.rejected,
                    f"HubSpot search: more than {SEARCH_CAP} contacts share one modification "
                    "time; cannot page past them",
                )
            anchor, after = newest, None

    async def read(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The named contacts (those HubSpot no longer has are left out)."""
        found: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), READ_BATCH):
            chunk = unique[start : start + READ_BATCH]
            body = {
                "properties": PROPERTIES,
                "propertiesWithHistory": [],
                "inputs": [{"id": i} for i in chunk],
            }
            payload = await self._post(READ_PATH, body)
            found.extend(payload.get("results") or [])
        return found
