"""The mock CRM's log: a line per batch at INFO (counts), a line per record only at DEBUG."""

from __future__ import annotations

import logging

import pytest

from app.providers.base import Delivery
from app.providers.mock import Faults, MockProvider
from app.records import Kind
from tests.providers.conftest import delivery


def owners(*ids: str) -> list[Delivery]:
    return [delivery(Kind.owner, i, {"userId": i, "email": f"{i}@example.com"}) for i in ids]


async def test_a_batch_is_one_info_line_with_its_counts(caplog: pytest.LogCaptureFixture) -> None:
    mock = MockProvider(seed=1)
    await mock.deliver(Kind.owner, owners(*(f"u{n}" for n in range(300))))
    mock.faults = Faults(mode="reject", count=1)
    caplog.clear()  # only the next batch's lines

    with caplog.at_level(logging.INFO, logger="app.providers.mock"):
        await mock.deliver(Kind.owner, owners("u0", "u1", "u2", "new"))

    assert [r.getMessage() for r in caplog.records] == [
        "mock: 4 owner: 1 create, 1 failed, 2 update"
    ]


async def test_each_record_is_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    mock = MockProvider(seed=1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="app.providers.mock"):
        await mock.deliver(Kind.owner, owners("u1", "u2"))

    per_record = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(per_record) == 2
    assert per_record[0].startswith("mock create owner u1 -> crm_contact_")
