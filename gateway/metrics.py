"""The metrics of the whole system that one gateway process cannot count by itself, read from
Redis at each scrape of ``/metrics``: the workers' counts (``workers.metrics`` adds them to one
hash: turns and their latency, LLM tokens, handoffs, model load time) and the queues' depth.
The gateway's own counters (messages in, duplicates, replies out, delivery failures) are
prometheus-client counters of each replica."""

from __future__ import annotations

from collections.abc import Iterator

import redis.asyncio as aioredis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, Collector

from channels import constants as K

QUEUES = (K.QUEUE_BRAIN, K.QUEUE_DELIVER)
# Upper bounds (seconds) of the turn-latency histogram's buckets (the workers count into them).
TURN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class SystemMetrics(Collector):
    """The last snapshot read from Redis, as Prometheus metric families."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.queues: dict[str, int] = {}
        self.waiting = 0

    async def refresh(self, r: aioredis.Redis) -> None:
        """Read the workers' counts and the queues' depth (one round trip)."""
        pipe = r.pipeline(transaction=False)
        pipe.hgetall(K.WORKER_METRICS)
        for queue in QUEUES:
            pipe.llen(K.CELERY_KEY_PREFIX + queue)
        pipe.scard(K.ACTIVE)
        counts, *depths, waiting = await pipe.execute()
        self.counts = {_text(k): float(v) for k, v in counts.items()}
        self.queues = dict(zip(QUEUES, (int(d) for d in depths), strict=True))
        self.waiting = int(waiting)

    def collect(self) -> Iterator[Metric]:
        """The metric families of the last snapshot."""
        c = self.counts
        turns = CounterMetricFamily(
            "omnigate_turns", "Turns the workers committed", labels=["channel"]
        )
        handoffs = CounterMetricFamily(
            "omnigate_handoffs", "Conversations handed to a person", labels=["channel"]
        )
        for key, value in sorted(c.items()):
            kind, _, channel = key.partition(":")
            if kind == "turns":
                turns.add_metric([channel], value)
            elif kind == "handoffs":
                handoffs.add_metric([channel], value)
        yield turns
        yield handoffs
        buckets = [(str(b), c.get(f"turn_bucket:{b}", 0.0)) for b in TURN_BUCKETS]
        total = sum(v for k, v in c.items() if k.startswith("turns:"))
        latency = HistogramMetricFamily(
            "omnigate_turn_seconds", "Time the workers took per turn, brain included"
        )
        latency.add_metric([], [*buckets, ("+Inf", total)], c.get("turn_seconds_sum", 0.0))
        yield latency
        yield CounterMetricFamily(
            "omnigate_llm_tokens", "LLM tokens generated", value=c.get("llm_tokens", 0.0)
        )
        yield CounterMetricFamily(
            "omnigate_llm_turn_seconds",
            "Seconds of the turns that generated LLM tokens (tokens/s = the two rates' ratio)",
            value=c.get("llm_seconds", 0.0),
        )
        yield GaugeMetricFamily(
            "omnigate_model_load_seconds",
            "Seconds the last worker process took to load the brain's models",
            value=c.get("model_load_seconds", 0.0),
        )
        depth = GaugeMetricFamily(
            "omnigate_queue_depth", "Tasks waiting in a Celery queue", labels=["queue"]
        )
        for queue, n in self.queues.items():
            depth.add_metric([queue], n)
        yield depth
        yield GaugeMetricFamily(
            "omnigate_conversations_waiting",
            "Conversations with messages waiting for a turn",
            value=self.waiting,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


SYSTEM = SystemMetrics()
REGISTRY.register(SYSTEM)
