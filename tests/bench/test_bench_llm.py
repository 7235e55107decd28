"""The generation service against plain sequential ``generate``, in the same run.

For N = 1, 8 and 32 concurrent requests (the dialogue's own rewording prompts, greedy, up to
``NEW_TOKENS`` each): tokens per second through ``brain.generation.GenerationService`` with N
callers at once, and the time to each caller's first text piece; beside it, the tokens per
second of transformers' ``model.generate`` on the same model, one prompt after another
(measured on ``min(N, SEQUENTIAL_SAMPLE)`` of the prompts just before that row, so both sides
of a row share the machine's load of the moment).

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_llm.py``); one JSON line.
"""

from __future__ import annotations

import json
import statistics
import threading
import time

import pytest
import torch

from brain.generation import GenerationService
from brain.llm import load_model
from gateway.settings import load_settings

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

NEW_TOKENS = 32  # half of brain.dialogue.REPHRASE_TOKENS: the shared 2 cores are slow
SEQUENTIAL_SAMPLE = 3
CONCURRENCY = (1, 8, 32)
SYSTEM = (
    "You are a friendly customer-service assistant of the shop Kestrel Outfitters. Rewrite the "
    "draft reply in your own words: warm, short, one or two sentences. Keep every fact. Add "
    "nothing."
)
CUSTOMER = ["hi", "hello there", "thanks!", "thank you so much", "bye", "good morning", "hey"]
DRAFT = [
    "Hello, welcome to Kestrel Outfitters! I can track your order, help with returns, refunds, "
    "delivery and payment, and find products for you. How can I help?",
    "You're welcome! Is there anything else I can help you with?",
    "Thank you for visiting Kestrel Outfitters. Have a great day!",
]


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"Customer: {CUSTOMER[i % len(CUSTOMER)]} (#{i})\n"
                f"Draft reply: {DRAFT[i % len(DRAFT)]}",
            },
        ]
        for i in range(n)
    ]


def _sequential(model: object, service: GenerationService, prompts: list) -> float:
    """Tokens per second of plain ``generate``, one prompt at a time."""
    tokens, start = 0, time.perf_counter()
    for messages in prompts:
        ids = torch.tensor([service.prompt_ids(messages)])
        with torch.inference_mode():
            out = model.generate(  # type: ignore[attr-defined]
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                do_sample=False, pad_token_id=service.tokenizer.pad_token_id,
            )  # fmt: skip
        new = out[0, ids.shape[1] :]
        tokens += int((~torch.isin(new, torch.tensor(sorted(service.eos_ids)))).sum())
    return tokens / (time.perf_counter() - start)


def _concurrent(service: GenerationService, prompts: list) -> tuple[float, float]:
    """(tokens per second, p50 time to first piece in ms) with every prompt at once."""
    first: list[float] = []
    before = service.stats.tokens

    def one(messages: list[dict[str, str]]) -> None:
        start = time.perf_counter()
        pieces = service.stream(messages, NEW_TOKENS)
        next(pieces, None)
        first.append(time.perf_counter() - start)
        for _ in pieces:
            pass

    threads = [threading.Thread(target=one, args=(p,)) for p in prompts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return (service.stats.tokens - before) / elapsed, statistics.median(first) * 1000


def test_bench_llm_concurrency() -> None:
    settings = load_settings(OMNIGATE_LLM_MODEL="smollm2", OMNIGATE_DEVICE="cpu")
    model, tokenizer, device = load_model(settings.brain_config())
    service = GenerationService(model, tokenizer, device, max_batch=max(CONCURRENCY))
    service.generate(_prompts(1)[0], 4)  # warm-up, outside the figures
    rows = []
    for n in CONCURRENCY:
        prompts = _prompts(n)
        sequential = _sequential(model, service, prompts[:SEQUENTIAL_SAMPLE])
        tok_per_s, ttft_ms = _concurrent(service, prompts)
        rows.append(
            {
                "concurrent": n,
                "tok_per_s": round(tok_per_s, 1),
                "sequential_tok_per_s": round(sequential, 1),
                "speedup": round(tok_per_s / sequential, 2),
                "ttft_p50_ms": round(ttft_ms),
            }
        )
    print(json.dumps({"bench": "llm_concurrency", "device": device, "rows": rows}))
    assert all(row["tok_per_s"] > 0 for row in rows)
