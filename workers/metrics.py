"""The workers' counts for ``/metrics``. A worker runs in many processes (prefork children,
several hosts) that Prometheus does not scrape, so each adds its counts to one Redis hash
(``K.WORKER_METRICS``, HINCRBY/HINCRBYFLOAT) and every gateway exposes the totals
(``gateway.metrics``): counters that only go up, read the same from any replica."""

from __future__ import annotations

import redis

from channels import constants as K
from gateway.metrics import TURN_BUCKETS


def count_turn(r: redis.Redis, channel: str, seconds: float, tokens: int, *, handoff: bool) -> None:
    """One committed turn of ``channel`` that took ``seconds`` and generated ``tokens``."""
    pipe = r.pipeline(transaction=False)
    pipe.hincrby(K.WORKER_METRICS, f"turns:{channel}", 1)
    pipe.hincrbyfloat(K.WORKER_METRICS, "turn_seconds_sum", seconds)
    for bound in TURN_BUCKETS:
        if seconds <= bound:
            pipe.hincrby(K.WORKER_METRICS, f"turn_bucket:{bound}", 1)
    if tokens:
        pipe.hincrby(K.WORKER_METRICS, "llm_tokens", tokens)
        pipe.hincrbyfloat(K.WORKER_METRICS, "llm_seconds", seconds)
    if handoff:
        pipe.hincrby(K.WORKER_METRICS, f"handoffs:{channel}", 1)
    pipe.execute()


def model_loaded(r: redis.Redis, seconds: float) -> None:
    """The brain (every model) of a worker process took ``seconds`` to load."""
    r.hset(K.WORKER_METRICS, "model_load_seconds", seconds)
