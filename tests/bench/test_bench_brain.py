"""The shop brain alone (no Redis, no HTTP): turns per second with the LLM off and on, next
to a baseline measured in this run: the raw embedder call on the same messages (the least a
turn costs to understand). The LLM's own throughput is ``test_bench_llm.py``.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_brain.py``).
"""

from __future__ import annotations

import json
import time

import pytest

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


def _run_script(brain: ShopBrain) -> tuple[int, float]:
    turns = 0
    start = time.perf_counter()
    for _ in range(ROUNDS):
        session = Session()
        for text in SCRIPT:
            brain.respond(_turn(text, session))
            turns += 1
    return turns, time.perf_counter() - start


def _report(name: str, **figures: object) -> None:
    print(json.dumps({"bench": name, **figures}))


def test_bench_turns_per_second() -> None:
    off = ShopBrain(load_settings(OMNIGATE_LLM_MODEL="off").brain_config())
    embedder = off.nlu.embedder
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for text in SCRIPT:
            embedder.encode([text])
    base_s = time.perf_counter() - start
    n, off_s = _run_script(off)
    on = ShopBrain(load_settings(OMNIGATE_LLM_MODEL="smollm2").brain_config())
    n_on, on_s = _run_script(on)
    _report(
        "brain_turns",
        baseline_embed_per_s=round(n / base_s, 1),
        llm_off_turns_per_s=round(n / off_s, 1),
        llm_on_turns_per_s=round(n_on / on_s, 2),
        llm_tokens_generated=on.llm.tokens_generated if isinstance(on.llm, LocalLlm) else 0,
        n=n,
    )
