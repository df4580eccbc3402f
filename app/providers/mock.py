"""The mock CRM: keeps what it gets in memory, answers with deterministic ids, fails on request.

It logs one INFO line per batch (the counts) and one DEBUG line per record: a bulk run of
10,000 records is a few dozen lines at the default level, not 10,000."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.models import Operation
from app.providers.base import Action, Delivery, FailureKind, Outcome, Provider, ProviderError
from app.records import GUEST_FIELDS, Kind, without_guest
from app.settings import MockSettings

log = logging.getLogger(__name__)

FaultMode = Literal["transient", "timeout", "rate_limit", "reject"]

_CRM_NOUN = {Kind.owner: "contact"}


@dataclass
class Faults:
    """What the mock does wrong: `mode` for a share (`rate`) of deliveries, or the next `count`."""

    mode: FaultMode | None = None
    rate: float = 1.0
    count: int | None = None
    retry_after: float = 1.0

    def take(self, rng: random.Random) -> FaultMode | None:
        if self.mode is None:
            return None
        if self.count is not None:
            if self.count <= 0:
                return None
            self.count -= 1
            return self.mode
        return self.mode if rng.random() < self.rate else None


def mock_crm_id(kind: Kind, record_id: str) -> str:
    digest = hashlib.sha256(f"{kind}:{record_id}".encode()).hexdigest()[:12]
    return f"crm_{_CRM_NOUN.get(kind, kind.value)}_{digest}"


class MockProvider(Provider):
    name = "mock"
    batch_size = 500

    def __init__(self, settings: MockSettings | None = None, *, seed: int | None = None) -> None:
        settings = settings or MockSettings()
        self.faults = Faults(
            mode=settings.fault,
            rate=settings.fault_rate,
            count=settings.fault_count,
            retry_after=settings.retry_after,
        )
        self.latency = settings.latency_ms / 1000
        self.store: dict[tuple[Kind, str], dict[str, Any]] = {}
        self.calls = 0  # deliveries received, faulty ones included
        self._rng = random.Random(seed)

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        if self.latency:
            await asyncio.sleep(self.latency)
        outcomes = [self._one(kind, d) for d in deliveries]
        actions = Counter(o.action.value if o.ok else "failed" for o in outcomes)
        log.info(
            "mock: %d %s: %s",
            len(outcomes),
            kind.value,
            ", ".join(f"{count} {action}" for action, count in sorted(actions.items())),
        )
        return outcomes

    def _one(self, kind: Kind, delivery: Delivery) -> Outcome:
        self.calls += 1
        request = {"kind": kind.value, "id": delivery.record_id, "properties": delivery.data}
        if delivery.parent_crm_id:
            request["parentId"] = delivery.parent_crm_id
        fault = self.faults.take(self._rng)
        if fault is not None:
            return Outcome.failed(self._error(fault, request))
        key = (kind, delivery.record_id)
        created = key not in self.store
        self.store[key] = delivery.data
        crm_id = delivery.crm_id or mock_crm_id(kind, delivery.record_id)
        action = Action.note if kind is Kind.note else Action.create if created else Action.update
        log.debug("mock %s %s %s -> %s", action, kind, delivery.record_id, crm_id)
        return Outcome(
            crm_id=crm_id,
            action=action,
            http_status=201 if created else 200,
            request=request,
            response={"id": crm_id, "created": created},
        )

    async def delete(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Removes each record from the store (an erased guest's record is kept without the
        guest's details); a record it does not hold counts as deleted."""
        if self.latency:
            await asyncio.sleep(self.latency)
        outcomes = [self._remove(kind, d) for d in deliveries]
        failed = sum(not o.ok for o in outcomes)
        log.info(
            "mock: %d %s: %d deleted, %d failed",
            len(outcomes),
            kind.value,
            len(outcomes) - failed,
            failed,
        )
        return outcomes

    def _remove(self, kind: Kind, delivery: Delivery) -> Outcome:
        self.calls += 1
        request = {"kind": kind.value, "id": delivery.record_id, "operation": delivery.operation}
        fault = self.faults.take(self._rng)
        if fault is not None:
            return Outcome.failed(self._error(fault, request), Action.delete)
        key = (kind, delivery.record_id)
        guest_only = delivery.operation is Operation.erase and kind in (Kind.enquiry, Kind.booking)
        if guest_only and key in self.store:
            self.store[key] = without_guest(self.store[key])
            response: dict[str, Any] = {"id": delivery.crm_id, "blanked": list(GUEST_FIELDS)}
        else:
            found = self.store.pop(key, None) is not None
            response = {"id": delivery.crm_id, "deleted": found}
        log.debug("mock %s %s %s", delivery.operation, kind, delivery.record_id)
        return Outcome(
            crm_id=delivery.crm_id,
            action=Action.delete,
            http_status=200,
            request=request,
            response=response,
        )

    def _error(self, fault: FaultMode, request: dict[str, Any]) -> ProviderError:
        match fault:
            case "transient":
                return ProviderError(
                    FailureKind.transient,
                    "mock: 503 service unavailable",
                    http_status=503,
                    request=request,
                    response={"error": "service unavailable"},
                )
            case "timeout":
                return ProviderError(FailureKind.timeout, "mock: timed out", request=request)
            case "rate_limit":
                return ProviderError(
                    FailureKind.rate_limited,
                    "mock: 429 too many requests",
                    http_status=429,
                    retry_after=self.faults.retry_after,
                    request=request,
                    response={"error": "rate limited", "retryAfter": self.faults.retry_after},
                )
            case "reject":
                return ProviderError(
                    FailureKind.rejected,
                    "mock: 400 invalid record: rejected by request",
                    http_status=400,
                    request=request,
                    response={"error": "invalid record", "message": "rejected by request"},
                )
