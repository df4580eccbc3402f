"""What both fake CRMs share: a count of requests per rolling window, and faults (timeouts,
5xx, dropped connections, 429s) set over HTTP by tests and demos."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultMode = Literal["timeout", "error", "drop", "rate_limit", "daily_limit", "secondly_limit"]
CONTROL_PREFIX = "/_fake"


class FaultPlan(BaseModel):
    """Misbehave on matching requests: the next `count` of them (or a share, `rate`)."""

    mode: FaultMode | None = None
    count: int | None = Field(None, ge=0)
    rate: float = Field(1.0, ge=0, le=1)
    # before: the request is not processed; after: it is processed, then the answer goes wrong
    # (the hard case: the CRM has the record but the client does not know).
    when: Literal["before", "after"] = "after"
    delay: float = Field(30.0, ge=0, description="seconds a timeout stalls the answer")
    status: int = Field(500, ge=500, le=599)
    path_prefix: str = ""
    # Let this many matching requests through first (a 429 on the third page of a pull).
    skip: int = Field(0, ge=0)

    def take(self, path: str, rng: random.Random) -> FaultMode | None:
        if self.mode is None or not path.startswith(self.path_prefix):
            return None
        if self.skip > 0:
            self.skip -= 1
            return None
        if self.count is not None:
            if self.count <= 0:
                return None
            self.count -= 1
            return self.mode
        return self.mode if rng.random() < self.rate else None


@dataclass
class WindowCounter:
    """Requests as the CRM receives them: the count in the rolling window now, and the most
    ever seen in any window (a window ending at some request holds the maximum)."""

    window: float = 10.0
    total: int = 0
    max_in_window: int = 0
    first_at: float | None = None  # wall-clock time of the first and the last request counted
    last_at: float | None = None
    _times: deque[float] = field(default_factory=deque)

    def record(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        self.total += 1
        self.last_at = time.time()
        if self.first_at is None:
            self.first_at = self.last_at
        count = self.in_window(now)
        self.max_in_window = max(self.max_in_window, count)
        return count

    def in_window(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        return len(self._times)

    def reset(self) -> None:
        self.total = self.max_in_window = 0
        self.first_at = self.last_at = None
        self._times.clear()


@dataclass
class FakeState:
    faults: FaultPlan = field(default_factory=FaultPlan)
    counter: WindowCounter = field(default_factory=WindowCounter)
    faults_served: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.counter.total,
            "inWindow": self.counter.in_window(),
            "maxInWindow": self.counter.max_in_window,
            # the span the CRM saw, first request to last (seconds)
            "span": (self.counter.last_at or 0.0) - (self.counter.first_at or 0.0),
            "windowSeconds": self.counter.window,
            "faultsServed": dict(self.faults_served),
            "faults": self.faults.model_dump(),
        }


class FaultyApp:
    """ASGI wrapper: counts every CRM request on arrival and applies the fault plan around the
    real handler (control paths under /_fake are never counted nor faulted)."""

    def __init__(
        self,
        app: ASGIApp,
        state: FakeState,
        respond_fault: Any,  # (mode, status) -> (status, headers, body) for error/429 faults
    ) -> None:
        self.app = app
        self.state = state
        self.respond_fault = respond_fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        self.state.counter.record()
        plan = self.state.faults
        fault = plan.take(path, self.state.rng)
        if fault is None:
            await self.app(scope, receive, send)
            return
        self.state.faults_served[fault] = self.state.faults_served.get(fault, 0) + 1
        if plan.when == "before" and fault in (
            "error",
            "rate_limit",
            "daily_limit",
            "secondly_limit",
        ):
            await self._send_fault(send, fault, plan.status)
            return
        if plan.when == "before" and fault == "drop":
            await _drop(send)
            return
        if plan.when == "before" and fault == "timeout":
            await asyncio.sleep(plan.delay)
            await self.app(scope, receive, send)
            return
        # after: process the request for real, then spoil the answer
        captured: list[Message] = []

        async def keep(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, keep)
        if fault == "timeout":
            await asyncio.sleep(plan.delay)
            for message in captured:
                await send(message)
        elif fault == "drop":
            await _drop(send)
        else:
            await self._send_fault(send, fault, plan.status)

    async def _send_fault(self, send: Send, fault: str, status: int) -> None:
        code, headers, body = self.respond_fault(fault, status)
        raw = json.dumps(body).encode()
        header_list = [(b"content-type", b"application/json")]
        header_list += [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
        header_list.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": code, "headers": header_list})
        await send({"type": "http.response.body", "body": raw})


class DroppedConnection(Exception):
    """Raised after a partial answer, so the server closes the connection mid-response."""


async def _drop(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"status":', "more_body": True})
    raise DroppedConnection("fake: connection dropped on purpose")
