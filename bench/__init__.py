"""Benchmarks, run by `make bench` (`python -m bench`); figures for the README and reports."""
