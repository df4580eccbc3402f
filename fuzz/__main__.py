"""`make fuzz` (`python -m fuzz`): a bounded schemathesis run over /openapi.json of a real server
(`crm-sync serve` on a fresh SQLite file, mock and internal providers, webhook secrets set),
once with an ops key and once with a sync key. Every response is checked against the document:
no 5xx, status codes, content types, headers and bodies as documented, 405 with a true Allow,
auth enforced. Exit status 1 on any failure.

Two request-side checks are left out, each on purpose:
- negative_data_rejection: the record endpoints take what the website sends leniently (numeric
  ids and numbers as strings, Unix times), which a JSON schema of the strict types calls
  invalid; that leniency is the website's contract.
- positive_data_acceptance: some values the schema cannot describe are refused, rightly: NUL
  and lone surrogates (no store holds them), cursors this service never gave out.

FUZZ_MAX_EXAMPLES (default 20) and FUZZ_SEED (default 1) bound and fix the run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
OPS_KEY = "fuzz-ops-key-0123456789"
SYNC_KEY = "fuzz-sync-key-0123456789"
LEFT_OUT = "negative_data_rejection,positive_data_acceptance"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url}/healthz within {seconds:.0f} s")


def schemathesis(url: str, key: str, max_examples: int, seed: int, folder: str) -> int:
    """One run; its cache goes in `folder`, not the checkout."""
    command = [
        str(BIN / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        LEFT_OUT,
        "--header",
        f"Authorization: Bearer {key}",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--exclude-path-regex",
        "^/ui",  # the HTML dashboard, if present, is not part of the API document
        "--no-color",
    ]
    return subprocess.run(command, check=False, cwd=folder).returncode


def main() -> int:
    max_examples = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="crm-sync-fuzz-") as folder:
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/fuzz.db",
            "API_KEYS": f"website:sync:{SYNC_KEY},ops:ops:{OPS_KEY}",
            "CRM_PROVIDERS": "mock,internal",
            "STRIPE_WEBHOOK_SECRET": "whsec_fuzz_0123456789",
            "HUBSPOT_APP_SECRET": "fuzz-hubspot-app-secret",
            "SYNC_WAIT_SECONDS": "0.5",
            "BULK_WAIT_SECONDS": "2",
            "LOG_LEVEL": "WARNING",
        }
        log = Path(folder) / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(BIN / "crm-sync"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_up(url, server)
                failed = 0
                for name, key in (("ops", OPS_KEY), ("sync", SYNC_KEY)):
                    print(f"== schemathesis with the {name} key", flush=True)
                    failed |= schemathesis(url, key, max_examples, seed, folder)
            finally:
                server.terminate()
                server.wait(timeout=30)
        if failed:
            print(f"== fuzz failed; the server's log:\n{log.read_text()[-5000:]}", flush=True)
        print("== fuzz: " + ("FAILED" if failed else "0 server errors, 0 schema violations"))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
