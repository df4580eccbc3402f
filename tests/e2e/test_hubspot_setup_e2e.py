"""`crm-sync hubspot setup`, the command itself, against the fake HubSpot bare of crm-sync's
properties: the first run creates everything, the second creates nothing, --check agrees."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from app.fakes.hubspot import FakeHubSpot
from app.providers.hubspot import properties
from tests.e2e.conftest import HUBSPOT_TOKEN, serve

CLI = Path(sys.executable).with_name("crm-sync")


async def setup(url: str, *args: str) -> tuple[int, dict[str, list[str]], str]:
    env = os.environ | {"HUBSPOT_BASE_URL": url, "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN}
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        "hubspot",
        "setup",
        "--json",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, json.loads(out or b"{}"), err.decode()


async def test_setup_creates_every_custom_property_once(free_port) -> None:
    fake = FakeHubSpot(rate_limit=100, token=HUBSPOT_TOKEN, seeded=False)
    custom = [d for d in properties.definitions() if d.custom and d.object != "leads"]
    async with serve(fake.asgi(), free_port()) as url:
        code_check, before, _ = await setup(url, "--check")
        code_first, first, err = await setup(url)
        code_second, second, _ = await setup(url)

    assert code_check == 1 and len(before["missing"]) == len(custom) + 4
    assert code_first == 0, err
    assert len(first["created"]) == len(custom) + 4  # and the group on each object type
    assert sorted(name for _, name in fake.registry.created) == sorted(d.name for d in custom)
    assert code_second == 0 and second["created"] == [] and second["drift"] == []
    # What setup made is what the definitions say, option for option.
    status = fake.registry.properties["listings"]["listing_status"]
    assert [o["value"] for o in status["options"]] == list(properties.LISTING_STATUSES)
    assert fake.registry.properties["contacts"]["website_user_id"]["hasUniqueValue"] is True
