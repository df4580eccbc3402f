"""`python -m bench [NAME ...]`: run every bench/bench_*.py module's main(), or the ones named
(`bulk` or `bench_bulk`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def modules() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    available = modules()
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv] or available
    unknown = [w for w in wanted if w not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {', '.join(available)}")
        return 2
    for name in wanted:
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"({name} took {time.perf_counter() - started:.0f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
