"""`make run` as a newcomer meets it: it says how to call the command line, and the command it
prints works from a new shell beside the running server."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.eventually import eventually

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_run(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[tuple[int, list[str]]]:
    """`make run` on a free port and a fresh SQLite file; its first lines of output."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/crm_sync.db",
    }
    server = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # make and the server it starts stop together
    )
    assert server.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120  # setup's lines come first when .venv is not up to date
    while len(lines) < 4 and time.monotonic() < deadline:
        ready, _, _ = select.select([server.stdout], [], [], 1.0)
        line = server.stdout.readline() if ready else ""
        if line.startswith("crm-sync: serving") or lines:
            lines.append(line.strip())
    try:
        yield port, lines
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def new_shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
async def test_make_run_says_how_to_call_the_cli_and_that_works(make_run, tmp_path) -> None:
    port, lines = make_run
    assert (
        lines[0]
        == f"crm-sync: serving http://127.0.0.1:{port} (API docs: http://127.0.0.1:{port}/docs)"
    )
    [printed] = [line for line in lines if line.endswith("crm-sync --help")]
    assert printed == ".venv/bin/crm-sync --help"

    async def serving() -> None:
        async with httpx.AsyncClient() as http:
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.TransportError as exc:
                raise AssertionError(f"not serving yet: {exc}") from exc
            assert answer.status_code == 200

    await eventually(serving, seconds=60, every=0.2)
    # A new shell: nothing activated, crm-sync not on the PATH; the settings come from the
    # environment as they would from the same .env.
    shell = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/crm_sync.db",
    }
    assert new_shell("command -v crm-sync", shell).returncode != 0
    shown = new_shell(printed, shell)
    assert shown.returncode == 0 and "bulk" in shown.stdout

    async def sees_the_server() -> None:
        for how in (".venv/bin/crm-sync workers", "source .venv/bin/activate && crm-sync workers"):
            listed = new_shell(how, shell)
            assert listed.returncode == 0 and "serve pid" in listed.stdout, listed

    await eventually(sees_the_server, seconds=30, every=0.5)
