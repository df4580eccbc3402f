"""Stripe's API read at processing time: the subscription or invoice an event is about, as it
is now (with STRIPE_API_KEY), through the stripe library's async client.

An event's payload is its object as it was when the event happened; Stripe recommends reading
the object again when order matters (https://docs.stripe.com/webhooks#event-ordering). The
object read now is applied instead of the payload's state; the payload stays the fallback when
the read fails, so Stripe being down never stops processing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import stripe
from pydantic import SecretStr

from app.webhooks.stripe_events import (
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
    INVOICE_PAYMENT_SUCCEEDED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_DELETED,
    SUBSCRIPTION_UPDATED,
)

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one read; processing falls back to the payload after it
SUBSCRIPTION_EVENTS = frozenset({SUBSCRIPTION_CREATED, SUBSCRIPTION_UPDATED, SUBSCRIPTION_DELETED})
INVOICE_EVENTS = frozenset({INVOICE_PAID, INVOICE_PAYMENT_SUCCEEDED, INVOICE_PAYMENT_FAILED})


@dataclass(frozen=True, slots=True)
class Fetched:
    """What reading an event's object from Stripe gave: the object now, or why not."""

    current: dict[str, Any] | None
    problem: str | None = None  # e.g. "Stripe API: APIConnectionError" (never a message)


class StripeObjects:
    """Reads subscriptions and invoices with a restricted API key (read access to them is
    enough). Use as `async with`: the HTTP client is closed on exit."""

    def __init__(self, api_key: SecretStr, *, timeout: float = TIMEOUT) -> None:
        # The stripe library logs every response body (DEBUG) and every API error's message
        # (INFO), and an error message can quote the key: only its warnings get through.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        self._http = stripe.HTTPXClient(timeout=timeout)
        # No retries of its own: a failed read is not worth delaying the event for.
        self._client = stripe.StripeClient(
            api_key.get_secret_value(), http_client=self._http, max_network_retries=0
        )

    async def __aenter__(self) -> StripeObjects:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def current(self, event: dict[str, Any]) -> Fetched | None:
        """The event's subscription or invoice as Stripe has it now; None for other events.
        Errors are not raised: a Fetched without an object says what went wrong, by error
        class and HTTP status only (Stripe's messages can quote part of the key)."""
        object_id = event["data"]["object"].get("id")
        if not isinstance(object_id, str) or not object_id:
            return None
        v1 = self._client.v1
        try:
            if event["type"] in SUBSCRIPTION_EVENTS:
                found: Any = await v1.subscriptions.retrieve_async(object_id)
            elif event["type"] in INVOICE_EVENTS:
                found = await v1.invoices.retrieve_async(object_id)
            else:
                return None
        except stripe.StripeError as exc:
            status = f" (HTTP {exc.http_status})" if exc.http_status else ""
            problem = f"Stripe API: {type(exc).__name__}{status}"
            log.warning("reading %s for event %s failed: %s", object_id, event["id"], problem)
            return Fetched(None, problem)
        current: dict[str, Any] = found.to_dict()
        return Fetched(current)
