"""The shop brain alone (no Redis, no HTTP): turns per second with the LLM off and on, and the
LLM's tokens per second through our batcher — each next to a baseline measured in this run:

- turns: the raw embedder call on the same messages (the least a turn costs to understand);
- tokens: a raw ``model.generate`` on the same prompts, without our wrapper.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_brain.py``).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

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
PROMPTS = [
    "Say hello to a customer of an outdoor shop.",
    "Thank the customer for their order.",
    "Tell the customer their parcel is on its way.",
    "Wish the customer a nice weekend.",
]
NEW_TOKENS = 32


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
        llm_tokens_generated=on.llm.tokens_generated if on.llm else 0,
        n=n,
    )


def test_bench_llm_tokens_per_second() -> None:
    brain = ShopBrain(load_settings(OMNIGATE_LLM_MODEL="smollm2").brain_config())
    llm = brain.llm
    assert llm is not None
    tok, model = llm.tokenizer, llm.model
    messages = [[{"role": "user", "content": p}] for p in PROMPTS]

    # baseline: raw generate, one prompt at a time, exactly NEW_TOKENS each
    start = time.perf_counter()
    raw_tokens = 0
    for m in messages:
        ids = tok.apply_chat_template(m, add_generation_prompt=True, return_tensors="pt")
        ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
        with torch.inference_mode():
            out = model.generate(
                ids.to(llm.device),
                attention_mask=torch.ones_like(ids).to(llm.device),
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        raw_tokens += out.shape[1] - ids.shape[1]
    raw_s = time.perf_counter() - start

    # ours, sequential calls
    before = llm.tokens_generated
    start = time.perf_counter()
    for m in messages:
        llm.generate(m, NEW_TOKENS)
    seq_s = time.perf_counter() - start
    seq_tokens = llm.tokens_generated - before

    # ours, concurrent calls from threads: the batcher runs them as one padded batch
    before, batches = llm.tokens_generated, llm.batcher.batches_run
    threads = [threading.Thread(target=llm.generate, args=(m, NEW_TOKENS)) for m in messages]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    par_s = time.perf_counter() - start
    _report(
        "llm_tokens",
        device=llm.device,
        baseline_raw_generate_tok_per_s=round(raw_tokens / raw_s, 1),
        ours_sequential_tok_per_s=round(seq_tokens / seq_s, 1),
        ours_4_threads_tok_per_s=round((llm.tokens_generated - before) / par_s, 1),
        batches_for_4_threads=llm.batcher.batches_run - batches,
    )
