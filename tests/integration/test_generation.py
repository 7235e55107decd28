"""The generation service with the real SmolLM2: continuous batching gives every caller the
text plain ``generate`` gives it alone, whoever joins or leaves the batch meanwhile."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch

from brain import llm
from brain.generation import GenerationBusy, GenerationService, GenerationTimeout
from brain.llm import load_model
from gateway.settings import load_settings

PROMPTS = [
    [{"role": "user", "content": "Say hello to a customer of an outdoor shop."}],
    [{"role": "user", "content": "Thank the customer for their order, in one sentence."}],
    [
        {"role": "system", "content": "You are the assistant of a shop. Be brief."},
        {"role": "user", "content": "Tell the customer their parcel is on its way."},
    ],
]
TOKENS = 24


@pytest.fixture(scope="module")
def loaded() -> tuple[Any, Any, str]:
    settings = load_settings(OMNIGATE_LLM_MODEL="smollm2", OMNIGATE_DEVICE="cpu")
    model, tokenizer, device = load_model(settings.brain_config())
    # float32 even where bfloat16 is native: a batch of padded rows and one row alone round
    # bfloat16 differently, and these tests compare texts token for token.
    return model.float(), tokenizer, device


@pytest.fixture(scope="module")
def service(loaded: tuple[Any, Any, str]) -> GenerationService:
    return GenerationService(*loaded, max_batch=8)


def _alone(loaded: tuple[Any, Any, str], service: GenerationService, messages: list) -> str:
    model, tokenizer, _ = loaded
    ids = torch.tensor([service.prompt_ids(messages)])
    with torch.inference_mode():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=TOKENS, do_sample=False
        )
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()


def test_concurrent_callers_get_what_each_would_get_alone(
    loaded: tuple[Any, Any, str], service: GenerationService
) -> None:
    expected = [_alone(loaded, service, m) for m in PROMPTS]
    got: list[str] = [""] * len(PROMPTS)

    def one(i: int) -> None:
        got[i] = service.generate(PROMPTS[i], TOKENS)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected
    assert service.stats.max_batch_seen > 1  # they really shared decoding steps


def test_a_request_joins_a_running_batch(
    loaded: tuple[Any, Any, str], service: GenerationService
) -> None:
    expected = _alone(loaded, service, PROMPTS[1])
    first = service.stream(PROMPTS[0], 48)
    next(first)  # the first request is decoding now
    late = service.generate(PROMPTS[1], TOKENS)  # joins between two of its steps
    rest = "".join(first)
    assert late == expected
    assert rest


def test_a_reader_that_stops_early_leaves_the_batch(service: GenerationService) -> None:
    stream = service.stream(PROMPTS[0], 200)
    next(stream)
    stream.close()
    before = service.stats.tokens
    assert service.generate(PROMPTS[2], 8)  # the service goes on serving others
    assert service.stats.tokens - before < 100  # the abandoned request was not finished


def test_a_reply_closed_before_its_first_piece_leaves_the_batch(
    service: GenerationService,
) -> None:
    before = service.stats.tokens
    service.stream(PROMPTS[0], 200).close()  # a caller that went away at once
    assert service.generate(PROMPTS[2], 8)
    assert service.stats.tokens - before < 100  # the abandoned request was not finished


def test_a_generation_past_its_budget_ends_in_a_timeout(service: GenerationService) -> None:
    with pytest.raises(GenerationTimeout):
        "".join(service.stream(PROMPTS[0], 200, timeout_s=0.01))


def test_a_busy_service_refuses_a_slow_new_reply_at_once(loaded: tuple[Any, Any, str]) -> None:
    # A budget no reply fits: whatever is running, a newcomer is expected to be too slow.
    busy = GenerationService(*loaded, max_batch=8, admit_s=1e-6)
    assert busy.generate(PROMPTS[1], TOKENS)  # idle: admitted whatever the budget
    running = busy.stream(PROMPTS[0], 200)
    next(running)
    with pytest.raises(GenerationBusy):
        busy.stream(PROMPTS[2], TOKENS)
    running.close()
    assert busy.stats.refused == 1


def test_a_closed_reply_stops_counting_for_admission_at_once(loaded: tuple[Any, Any, str]) -> None:
    # The turn after one whose rewording grounding refused must not be refused for a reply
    # nobody reads any more.
    busy = GenerationService(*loaded, max_batch=8, admit_s=1e-6)
    assert busy.generate(PROMPTS[1], TOKENS)  # step times measured: newcomers look too slow
    abandoned = busy.stream(PROMPTS[0], 200)
    next(abandoned)
    abandoned.close()  # its row is still in the batch until the next step
    assert busy.generate(PROMPTS[2], TOKENS)
    assert busy.stats.refused == 0


def test_a_reply_closed_from_another_thread_ends_its_readers_wait(
    service: GenerationService,
) -> None:
    stream = service.stream(PROMPTS[0], 200)
    read: list[str] = []
    reading = threading.Event()

    def read_all() -> None:
        for piece in stream:
            read.append(piece)
            reading.set()  # from here on it waits for the next piece

    reader = threading.Thread(target=read_all)
    reader.start()
    assert reading.wait(timeout=60)
    stream.close()  # as the LLM server does when its client hangs up
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert len(read) < 100  # the reply was not generated to its end


def test_prompts_with_one_system_message_prefill_it_once_and_get_the_same_text(
    loaded: tuple[Any, Any, str],
) -> None:
    shop = GenerationService(*loaded, max_batch=8)
    system = {"role": "system", "content": "You are the assistant of a shop. Be brief."}
    prompts = [
        [system, {"role": "user", "content": "Tell the customer their parcel is on its way."}],
        [system, {"role": "user", "content": "Greet a customer who says hi."}],
    ]
    expected = [_alone(loaded, shop, m) for m in prompts]
    got = [shop.generate(m, TOKENS) for m in prompts]
    assert got == expected
    assert shop.stats.prefix_tokens_reused > 0  # the second prompt reused the first's prefill


def test_requests_arriving_together_are_prefilled_in_one_pass(
    loaded: tuple[Any, Any, str],
) -> None:
    # A generous gap, so the test does not depend on how fast this machine tokenizes.
    idle = GenerationService(*loaded, max_batch=8, burst_gap_s=1.0)
    streams = [idle.stream(m, TOKENS) for m in PROMPTS[:2]]  # a burst of two turns
    assert all("".join(s) for s in streams)
    assert idle.stats.prefills == 1


@pytest.mark.parametrize("native", [True, False])
def test_a_cpu_model_is_bfloat16_only_where_the_cpu_computes_it(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(llm, "native_bf16", lambda: native)
    settings = load_settings(OMNIGATE_LLM_MODEL="smollm2", OMNIGATE_DEVICE="cpu")
    model, _, _ = load_model(settings.brain_config())
    assert model.dtype == (torch.bfloat16 if native else torch.float32)
