"""The generation service: one causal LM, continuous batching, streamed text.

One background thread owns the model. Every decoding step runs all running requests as one
batch on a shared KV cache; requests join the batch between steps (their prompts are
prefilled together, then their cache rows are merged into the running cache) and leave it as
soon as they finish, are cancelled, or run out of tokens, so a short reply never waits for a
long one and a new request never waits for the batch to drain.

Shared prompt prefixes: a prompt that starts with a system message (the dialogue's is the same
for every turn of a shop) has that message's tokens prefilled once; their cached keys and
values are copied into each later request's rows, and only the rest of its prompt is
prefilled. On a CPU, prefill is most of a short reply's cost.

Admission: with ``admit_s`` set, a new request is refused at once (``GenerationBusy``) when
the service is already generating and expects the new reply to take longer than that, from
the step times and reply lengths it has measured. The caller then sends its grounded text
without waiting, so on a small CPU a burst of small talk cannot queue every turn behind it,
while a GPU (fast steps) admits nearly everything.

Rows of the running cache are left-padded to a common length; the attention mask hides the
padding and per-row position ids keep RoPE positions right. Leading columns that every row
pads are trimmed whenever rows leave.

transformers' own continuous-batching manager (``generate_batch``/``init_continuous_batching``)
was tried first on this CPU with SmolLM2-135M: one 32-token request took 74 s (paged cache
sized for a GPU), so the loop here is our own, on transformers' ``DynamicCache``.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

# How many prompts are prefilled in one forward pass when many arrive at once: bounds how
# long the running requests stall for newcomers.
PREFILL_CHUNK = 8
# An idle service's wait for the next request of a burst before it prefills (see ``_admit``).
BURST_GAP_S = 0.01
# How many recent decoding steps the admission estimate fits its step-time line to.
STEP_SAMPLES = 256
# How many recent replies the admission estimate takes a long reply's length from.
REPLY_SAMPLES = 64
# How many distinct system-message prefixes keep their prefilled keys and values.
PREFIX_CACHE = 16
_END = object()  # end of a request's stream


class GenerationError(Exception):
    """The model failed while generating; the caller falls back to its grounded text."""


class GenerationTimeout(GenerationError):
    """The model did not finish within the caller's time budget."""


class GenerationBusy(GenerationError):
    """The service expects a new reply to take longer than its admission budget; nothing
    was started, and the caller sends its grounded text at once."""


@dataclass(eq=False)  # each request is itself: hashed and compared by identity
class _Request:
    prompt: list[int]
    max_new_tokens: int
    prefix: tuple[int, ...] = ()  # leading prompt tokens whose prefill may be shared
    out: queue.Queue[object] = field(default_factory=queue.Queue)
    cancelled: bool = False  # set by the caller's thread, read by the generation thread
    tokens: list[int] = field(default_factory=list)
    sent_chars: int = 0


@dataclass
class Stats:
    """Counters for benchmarks and metrics."""

    requests: int = 0  # requests taken into the batch
    tokens: int = 0  # generated tokens, all requests
    steps: int = 0  # decoding steps (one batched forward pass each)
    prefills: int = 0  # prefill passes (one per group of joining requests)
    max_batch_seen: int = 0
    refused: int = 0  # requests turned away by admission (``GenerationBusy``)
    prefix_tokens_reused: int = 0  # prompt tokens not prefilled again (shared prefixes)


class GenerationService:
    """Continuous-batching generation on one model; thread-safe ``stream``/``generate``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: str,
        max_batch: int = 32,
        admit_s: float = 0.0,
        burst_gap_s: float = BURST_GAP_S,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_batch = max(1, max_batch)
        self.admit_s = admit_s  # 0: admit every request
        self.burst_gap_s = burst_gap_s
        self.stats = Stats()
        self.timing = AdmissionTiming()
        # Requests admitted and not yet ended or cancelled: what admission counts. A caller's
        # cancel counts at once, not a decoding step later when its row leaves the batch, so a
        # turn that follows a refused rewording is not refused for a reply nobody reads. No
        # lock: a set's add, discard and len are atomic under the GIL, and a stream's finalizer
        # (which may run while its thread holds any lock) settles its request here.
        self._live: set[_Request] = set()
        self.eos_ids = _eos_ids(model, tokenizer)
        self._pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self._queue: queue.Queue[_Request] = queue.Queue()
        # Prefilled (keys, values) per layer of shared prefixes; the generation thread's own.
        self._prefixes: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]]
        self._prefixes = OrderedDict()
        # A shop's system message is the same every turn: template and tokenize it once.
        self._system_ids = functools.lru_cache(maxsize=PREFIX_CACHE)(self._system_ids_uncached)
        self._thread = threading.Thread(target=self._loop, name="llm-generation", daemon=True)
        self._thread.start()

    # --- callers' side -------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids of chat ``messages`` (role/content dicts), ready to continue: the
        model's chat template, or plain "role: text" lines for a base model without one."""
        return self._ids(self._text(messages, reply=True))

    def _text(self, messages: list[dict[str, str]], reply: bool) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=reply, tokenize=False
                )
            )
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant:"] if reply else [*lines, ""])

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _shared_prefix(self, messages: list[dict[str, str]], prompt: list[int]) -> tuple[int, ...]:
        """The tokens of a leading system message when ``prompt`` starts with exactly them
        (the tokenizer may join tokens across the boundary; then nothing is shared)."""
        if len(messages) < 2 or messages[0].get("role") != "system":
            return ()
        prefix = self._system_ids(messages[0]["content"])
        if not prefix or len(prefix) >= len(prompt) or tuple(prompt[: len(prefix)]) != prefix:
            return ()
        return prefix

    def _system_ids_uncached(self, content: str) -> tuple[int, ...]:
        return tuple(self._ids(self._text([{"role": "system", "content": content}], reply=False)))

    def pending(self) -> int:
        """Requests waiting or being generated now (not counting cancelled ones)."""
        return len(self._live)

    def _settle(self, req: _Request) -> None:
        """``req`` ended or was cancelled: admission stops counting it."""
        self._live.discard(req)

    def expected_s(self, max_new_tokens: int) -> float:
        """Seconds a request joining now would take: its prefill plus the steps of a long
        reply (the 90th percentile of recent ones, at most ``max_new_tokens``) at the batch
        size it would make, from the measured step times (0 before any)."""
        rows = self.pending() + 1
        tokens = min(self.timing.reply_tokens(max_new_tokens), max_new_tokens)
        return self.timing.prefill_s + tokens * self.timing.step_s(rows)

    def stream(
        self, messages: list[dict[str, str]], max_new_tokens: int, timeout_s: float = 600.0
    ) -> ReplyStream:
        """Generate greedily for chat ``messages``: the text pieces as they are decoded (see
        ``ReplyStream``).

        Raises ``GenerationBusy`` here, before anything starts, when admission turns the
        request away.
        """
        if self.admit_s > 0 and self.pending() > 0:
            expected = self.expected_s(max_new_tokens)
            if expected > self.admit_s:
                self.stats.refused += 1
                raise GenerationBusy(
                    f"the LLM is busy: a new reply would take about {expected:.1f}s "
                    f"(admission budget {self.admit_s:g}s, OMNIGATE_LLM_ADMIT_S)"
                )
        prompt = self.prompt_ids(messages)
        req = _Request(prompt, max(1, max_new_tokens), self._shared_prefix(messages, prompt))
        self._live.add(req)
        self._queue.put(req)
        return ReplyStream(self, req, timeout_s)

    def generate(
        self, messages: list[dict[str, str]], max_new_tokens: int, timeout_s: float = 600.0
    ) -> str:
        """The whole generated text for chat ``messages`` (see ``stream``)."""
        return "".join(self.stream(messages, max_new_tokens, timeout_s)).strip()

    # --- the generation thread ----------------------------------------------------------

    def _loop(self) -> None:
        batch = _Batch(self._pad)
        while True:
            self._admit(batch)
            rows = len(batch.requests)
            if not rows:
                continue
            try:
                started = time.perf_counter()
                with torch.inference_mode():
                    self._step(batch)
                self.timing.add_step(rows, time.perf_counter() - started)
            except Exception as exc:  # every waiting caller gets the failure, none hangs
                log.exception("generation step failed")
                for req in batch.requests:
                    req.out.put(exc)
                batch.clear()

    def _admit(self, batch: _Batch) -> None:
        """Take waiting requests into the batch (blocking only when it is empty)."""
        joining: list[_Request] = []
        # An idle service waits a moment for the rest of a burst (turns arriving together
        # reach the queue a few milliseconds apart, each tokenizing its prompt first): one
        # prefill for all of them instead of a stall of the running rows per late-comer.
        wait = 0.0 if batch.requests else self.burst_gap_s
        if not batch.requests:
            joining.append(self._queue.get())
        while len(batch.requests) + len(joining) < self.max_batch:
            try:
                joining.append(self._queue.get(timeout=wait) if wait else self._queue.get_nowait())
            except queue.Empty:
                break
        joining = [r for r in joining if not r.cancelled]
        self.stats.requests += len(joining)
        by_prefix: dict[tuple[int, ...], list[_Request]] = {}
        for req in joining:
            by_prefix.setdefault(req.prefix, []).append(req)
        for prefix, sharing in by_prefix.items():
            for start in range(0, len(sharing), PREFILL_CHUNK):
                group = sharing[start : start + PREFILL_CHUNK]
                try:
                    started = time.perf_counter()
                    with torch.inference_mode():
                        self._prefill(batch, group, prefix)
                    self.timing.add_prefill(time.perf_counter() - started)
                except Exception as exc:
                    log.exception("prefill failed")
                    for req in group:
                        req.out.put(exc)

    def _prefill(self, batch: _Batch, group: list[_Request], prefix: tuple[int, ...]) -> None:
        """Prefill ``group``'s prompts in one pass and merge their rows into the batch. Rows
        are [shared prefix][left padding][rest of the prompt]: the mask hides the padding and
        the position ids skip it."""
        from transformers import DynamicCache

        shared = len(prefix)
        rests = [r.prompt[shared:] for r in group]
        width = max(len(r) for r in rests)
        ids = torch.full((len(group), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(group), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for i, rest in enumerate(rests):
            ids[i, width - len(rest) :] = torch.tensor(rest)
            mask[i, shared + width - len(rest) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        cache = DynamicCache()
        if prefix:
            rows = len(group)
            for layer, (keys, values) in enumerate(self._prefix_kv(prefix)):
                cache.update(keys.repeat(rows, 1, 1, 1), values.repeat(rows, 1, 1, 1), layer)
            self.stats.prefix_tokens_reused += shared * len(group)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,  # only the last position's logits are read
        )
        self.stats.prefills += 1
        first = out.logits[:, -1, :].argmax(-1)
        batch.merge(group, cache, mask, first)
        self._emit(batch, range(len(batch.requests) - len(group), len(batch.requests)))

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The prefilled keys and values of ``prefix`` (one row), computed on first use."""
        if prefix in self._prefixes:
            self._prefixes.move_to_end(prefix)
            return self._prefixes[prefix]
        from transformers import DynamicCache

        cache: Any = DynamicCache()  # its layers' keys/values are tensors once filled
        self.model(
            input_ids=torch.tensor([prefix], device=self.device),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.prefills += 1
        kv = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
        self._prefixes[prefix] = kv
        if len(self._prefixes) > PREFIX_CACHE:
            self._prefixes.popitem(last=False)
        return kv

    def _step(self, batch: _Batch) -> None:
        """One decoding step for every running request, then retire the finished ones."""
        assert batch.cache is not None and batch.mask is not None and batch.last is not None
        mask = torch.cat([batch.mask, batch.mask.new_ones((batch.mask.shape[0], 1))], dim=1)
        positions = (mask.sum(-1, keepdim=True) - 1).to(self.device)
        out = self.model(
            input_ids=batch.last.unsqueeze(-1),
            attention_mask=mask,
            position_ids=positions,
            cache=batch.cache,
            use_cache=True,
        )
        batch.mask = mask
        batch.last = out.logits[:, -1, :].argmax(-1)
        self.stats.steps += 1
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch.requests))
        self._emit(batch, range(len(batch.requests)))

    def _emit(self, batch: _Batch, rows: range) -> None:
        """Append each row's newest token, stream its new text, and retire finished rows."""
        assert batch.last is not None
        newest = batch.last.tolist()
        done: list[int] = []
        ended: list[_Request] = []
        for row in rows:
            req, token = batch.requests[row], int(newest[row])
            if req.cancelled:
                done.append(row)
                continue
            finished = token in self.eos_ids
            if not finished:
                req.tokens.append(token)
                self.stats.tokens += 1
                self._send_text(req, final=False)
            if finished or len(req.tokens) >= req.max_new_tokens:
                self.timing.add_reply(len(req.tokens))
                self._send_text(req, final=True)
                ended.append(req)
                done.append(row)
        if done:
            batch.drop(done)
        for req in ended:
            self._settle(req)  # before its caller hears the end, so admission never sees it
            req.out.put(_END)

    def _send_text(self, req: _Request, final: bool) -> None:
        text = self.tokenizer.decode(req.tokens, skip_special_tokens=True)
        # A multi-byte character split across tokens decodes as U+FFFD until it is whole.
        if not final and text.endswith("\ufffd"):
            return
        if len(text) > req.sent_chars:
            req.out.put(text[req.sent_chars :])
            req.sent_chars = len(text)


class ReplyStream(Iterator[str]):
    """The text pieces of one request, as the service decodes them.

    Iterating raises ``GenerationError`` when the model fails, and ``GenerationTimeout`` once
    the caller's ``timeout_s`` has passed. ``close()`` takes the request out of the batch at
    the next decoding step, even before its first piece; it may be called from any thread,
    also while another one waits for the next piece (that wait then ends). Dropping the
    stream unread closes it too.
    """

    def __init__(self, service: GenerationService, req: _Request, timeout_s: float) -> None:
        self._service = service
        self._req = req
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s
        self._closed = False

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> str:
        if self._closed:
            raise StopIteration
        left = max(self._deadline - time.monotonic(), 0.0)
        try:
            item = self._req.out.get(timeout=left)
        except queue.Empty:
            self.close()
            raise GenerationTimeout(f"the LLM took over {self._timeout_s:g}s") from None
        if item is _END:  # the service ended and settled the request
            self._closed = True
            raise StopIteration
        if isinstance(item, Exception):
            self.close()
            raise GenerationError(f"generation failed: {item}") from item
        return str(item)

    def close(self) -> None:
        """Stop generating this reply (see the class docstring)."""
        if self._closed:
            return
        self._closed = True
        self._abandon()
        self._req.out.put(_END)  # wakes a reader waiting on another thread

    def __del__(self) -> None:
        # A finalizer may run while this thread holds any lock (a queue's, say): it takes
        # none, and there is no reader left to wake.
        self._abandon()

    def _abandon(self) -> None:
        self._req.cancelled = True  # its row leaves the batch at the next step
        self._service._settle(self._req)


class AdmissionTiming:
    """What admission estimates from: recent decoding steps (batch rows, seconds), recent
    replies' lengths in tokens, and a running mean of a prefill's seconds. Written by the
    generation thread only; readers copy a sample list before reading it."""

    def __init__(self) -> None:
        self.steps: deque[tuple[int, float]] = deque(maxlen=STEP_SAMPLES)
        self.replies: deque[int] = deque(maxlen=REPLY_SAMPLES)
        self.prefill_s = 0.0

    def add_step(self, rows: int, seconds: float) -> None:
        """One decoding step of ``rows`` rows took ``seconds``."""
        self.steps.append((rows, seconds))

    def add_prefill(self, seconds: float) -> None:
        """One prefill pass took ``seconds``."""
        self.prefill_s = seconds if not self.prefill_s else 0.8 * self.prefill_s + 0.2 * seconds

    def add_reply(self, tokens: int) -> None:
        """A reply finished with ``tokens`` tokens."""
        self.replies.append(tokens)

    def reply_tokens(self, unknown: int) -> int:
        """The 90th percentile of recent replies' lengths; ``unknown`` before any finished."""
        lengths = sorted(self.replies)
        if not lengths:
            return unknown
        return lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]

    def step_s(self, rows: int) -> float:
        """One step's expected seconds with ``rows`` rows: a least-squares line through the
        recent steps (a fixed cost plus a cost per row), or their mean scaled by rows when
        they all had one batch size."""
        samples = list(self.steps)
        if not samples:
            return 0.0
        n = len(samples)
        mean_r = sum(r for r, _ in samples) / n
        mean_s = sum(s for _, s in samples) / n
        spread = sum((r - mean_r) ** 2 for r, _ in samples)
        if spread < 1e-9:
            return mean_s * max(rows / mean_r, 1.0)
        slope = sum((r - mean_r) * (s - mean_s) for r, s in samples) / spread
        slope = max(slope, 0.0)
        fixed = max(mean_s - slope * mean_r, 0.0)
        return fixed + slope * rows


class _Batch:
    """The running requests and their shared, left-padded KV cache."""

    def __init__(self, pad: int) -> None:
        self.pad = pad
        self.requests: list[_Request] = []
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # (rows, cache length): 1 = a real token
        self.last: torch.Tensor | None = None  # (rows,): each row's newest token, not yet fed

    def clear(self) -> None:
        self.requests, self.cache, self.mask, self.last = [], None, None, None

    def merge(
        self, group: list[_Request], cache: Any, mask: torch.Tensor, first: torch.Tensor
    ) -> None:
        """Append ``group``'s rows (their prefilled cache) below the running ones."""
        if self.cache is None or self.mask is None or self.last is None:
            self.requests, self.cache, self.mask, self.last = list(group), cache, mask, first
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat(
                [_left_pad(mine.values, width), _left_pad(theirs.values, width)]
            )
        self.mask = torch.cat([_left_pad(self.mask, width), _left_pad(mask, width)])
        self.last = torch.cat([self.last, first])
        self.requests.extend(group)

    def drop(self, rows: list[int]) -> None:
        """Retire ``rows``; trim the cache columns that only padding fills now."""
        gone = set(rows)
        keep = [i for i in range(len(self.requests)) if i not in gone]
        if not keep:
            self.clear()
            return
        assert self.mask is not None and self.last is not None
        index = torch.tensor(keep, device=self.mask.device)
        self.requests = [self.requests[i] for i in keep]
        self.mask, self.last = self.mask[index], self.last[index]
        # Columns before the first real token of every row carry nothing.
        skip = int((self.mask.cumsum(-1) == 0).sum(-1).min())
        self.mask = self.mask[:, skip:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, skip:, :]
            layer.values = layer.values[index, :, skip:, :]


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` (rows, …) padded with zeros on the left of its sequence axis to ``width``: the
    last axis of a mask, axis 2 of a (rows, heads, seq, dim) cache tensor."""
    axis = 1 if t.dim() == 2 else 2
    missing = width - t.shape[axis]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([t.new_zeros(shape), t], dim=axis)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token id that ends a reply (the tokenizer's and the generation config's)."""
    ids: set[int] = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list | tuple):
            ids.update(int(i) for i in source)
    return ids
