"""Benchmarks run only with ``make bench`` (``-m bench``); each prints its figures next to a
baseline measured in the same run, and asserts nothing about time."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-seconds",
        type=float,
        default=60.0,
        help="how long each phase of the load benchmark runs (tests/bench/test_bench_load.py)",
    )


def summary(latencies_s: Sequence[float], wall_s: float) -> dict[str, float]:
    """p50 / p99 in milliseconds and throughput per second."""
    ordered = sorted(latencies_s)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "per_s": round(len(ordered) / wall_s, 1),
        "n": len(ordered),
    }
