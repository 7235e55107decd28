"""The shop brain alone (no Redis, no HTTP): turns per second with the LLM off and on, next
to a baseline measured in this run: the raw embedder call on the same messages (the least a
turn costs to understand). The LLM's own throughput is ``test_bench_llm.py``.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_brain.py``).
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from brain.config import limit_cpu_threads
from brain.llm import LocalLlm
from brain.shop import ShopBrain
from brain.types import Session, Turn
from channels.schema import Inbound, User
from gateway.settings import load_settings

pytestmark = pytest.mark.bench

SCRIPT = [
    "hi",
    "where is my order?",
    "OG-10231",
    "anna.dahl@example.com",
    "when will it arrive?",
    "what is your return policy?",
    "do you accept paypal?",
    "I'm looking for trail running shoes under 150",
    "cheaper?",
    "thanks!",
]
ROUNDS = 5


def _turn(text: str, session: Session) -> Turn:
    msg = Inbound(
        channel="api", platform_id="b", user=User(id="bench"), conversation="bench", text=text
    )
    return Turn(message=msg, session=session)


def _run_script(brain: ShopBrain) -> tuple[list[float], float]:
    """Per-turn seconds and the wall time of ROUNDS runs of the script, each a new session."""
    brain.respond(_turn("hi", Session()))  # loads the models
    took = []
    start = time.perf_counter()
    for _ in range(ROUNDS):
        session = Session()
        for text in SCRIPT:
            t = time.perf_counter()
            brain.respond(_turn(text, session))
            took.append(time.perf_counter() - t)
    return took, time.perf_counter() - start


def _ms(took: list[float], q: float) -> float:
    return round(statistics.quantiles(took, n=100)[int(q * 100) - 1] * 1000, 1)


def _report(name: str, **figures: object) -> None:
    print(json.dumps({"bench": name, **figures}))


def test_bench_turns_per_second() -> None:
    settings = load_settings(OMNIGATE_LLM_MODEL="off")
    limit_cpu_threads(settings.torch_threads)  # as in a worker process
    off = ShopBrain(settings.brain_config())
    embedder = off.nlu.embedder
    embedder.encode(["hi"])
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for text in SCRIPT:
            embedder.encode([text])
    base_s = time.perf_counter() - start
    took, off_s = _run_script(off)
    n = len(took)
    on = ShopBrain(load_settings(OMNIGATE_LLM_MODEL="smollm2").brain_config())
    took_on, on_s = _run_script(on)
    _report(
        "brain_turns",
        baseline_embed_per_s=round(n / base_s, 1),
        llm_off_turns_per_s=round(n / off_s, 1),
        llm_off_ratio=round((n / off_s) / (n / base_s), 3),
        llm_off_p50_ms=_ms(took, 0.5),
        llm_off_p99_ms=_ms(took, 0.99),
        llm_on_turns_per_s=round(len(took_on) / on_s, 2),
        llm_on_p50_ms=_ms(took_on, 0.5),
        llm_on_p99_ms=_ms(took_on, 0.99),
        llm_tokens_generated=on.llm.tokens_generated if isinstance(on.llm, LocalLlm) else 0,
        n=n,
    )
