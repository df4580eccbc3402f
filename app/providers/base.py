"""The provider seam: one async `deliver` per batch, our own error kinds, and a lifecycle."""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from app.models import Operation
from app.records import Kind


class Action(StrEnum):
    """What a delivery did at the CRM, as the sync log's `action` column says it."""

    create = "create"
    update = "update"
    upsert = "upsert"
    delete = "delete"
    note = "note"


class FailureKind(StrEnum):
    transient = "transient"  # 5xx, dropped connection: retried, counts an attempt
    timeout = "timeout"  # not the record's fault: retried without using an attempt
    rate_limited = "rate_limited"  # 429: waits for Retry-After, no attempt used
    rejected = "rejected"  # 4xx validation: permanent until the content changes or a retry
    unauthorized = "unauthorized"  # bad credentials: the provider is held, its jobs kept

    @property
    def permanent(self) -> bool:
        return self is FailureKind.rejected


class ProviderError(Exception):
    """A provider's failure, whole batch or one record, in our terms."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        request: Any = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.http_status = http_status
        self.request = request
        self.response = response


@dataclass(frozen=True, slots=True)
class Delivery:
    """One record to write at one provider."""

    job_id: int
    kind: Kind
    record_id: str  # the website id
    data: dict[str, Any]  # the normalised snapshot
    crm_id: str | None  # known from an earlier delivery
    parent_crm_id: str | None  # the parent's CRM id at this provider, when the kind has one
    idempotency_key: str  # stable per job and content
    # upsert: write `data`; delete: remove the record; erase: forget the person it names (an
    # owner: their contact, GDPR-deleted where the CRM can; an enquiry or booking: its guest,
    # the record itself kept with the guest's details blanked).
    operation: Operation = Operation.upsert


@dataclass(slots=True)
class Outcome:
    """What happened to one delivery, in the order the deliveries were given."""

    crm_id: str | None = None
    action: Action = Action.upsert
    http_status: int | None = None
    request: Any = None
    response: Any = None
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, error: ProviderError, action: Action = Action.upsert) -> Outcome:
        return cls(
            action=action,
            http_status=error.http_status,
            request=error.request,
            response=error.response,
            error=error,
        )


class Provider(ABC):
    """A CRM. Subclasses map canonical records to their CRM and its errors to ProviderError."""

    name: ClassVar[str]
    batch_size: ClassVar[int] = 1
    kinds: ClassVar[frozenset[Kind]] = frozenset(Kind)

    @abstractmethod
    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Write a batch of one kind; one outcome per delivery, same order. May raise
        ProviderError for the whole batch (timeouts, 429, 5xx on a batch call)."""

    async def delete(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Remove a batch of one kind (each delivery's `operation` is `delete` or `erase`); one
        outcome per delivery, same order, with action `delete`. A record the CRM no longer has
        counts as deleted. May raise ProviderError for the whole batch, like `deliver`.

        Every adapter here implements it; a provider without one refuses each record (a
        permanent failure, visible in the log and the status), never pretends it is gone."""
        error = ProviderError(FailureKind.rejected, f"{self.name} cannot delete records")
        return [Outcome.failed(error, Action.delete) for _ in deliveries]

    async def check(self) -> bool:
        """Whether the CRM answers with our credentials."""
        return True

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_SECRET_KEY = re.compile(r"(authorization|token|secret|password|api[_-]?key|signature)", re.I)


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether a key names a secret (cached: a batch repeats the same few keys thousands of
    times, and the search was most of the sync log's cost)."""
    return _SECRET_KEY.search(key) is not None


def redact(payload: Any) -> Any:
    """Blank out anything keyed like a secret, before a payload reaches the sync log. Returns a
    copy of the dicts and lists (scalars as they are, without a call each)."""
    if isinstance(payload, dict):
        return {
            k: (
                "[redacted]"
                if _secret_key(k if type(k) is str else str(k))
                else (redact(v) if isinstance(v, dict | list) else v)
            )
            for k, v in payload.items()
        }
    if isinstance(payload, list):
        return [redact(v) if isinstance(v, dict | list) else v for v in payload]
    return payload
