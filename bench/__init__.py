"""Benchmarks, run by `make bench` (`python -m bench`); figures come from here, not from tests."""
