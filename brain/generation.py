"""The generation service: one causal LM, continuous batching, streamed text.

One background thread owns the model. Every decoding step runs all running requests as one
batch on a shared KV cache; requests join the batch between steps (their prompts are
prefilled together, then their cache rows are merged into the running cache) and leave it as
soon as they finish, are cancelled, or run out of tokens, so a short reply never waits for a
long one and a new request never waits for the batch to drain.

Rows of the running cache are left-padded to a common length; the attention mask hides the
padding and per-row position ids keep RoPE positions right. Leading columns that every row
pads are trimmed whenever rows leave.

transformers' own continuous-batching manager (``generate_batch``/``init_continuous_batching``)
was tried first on this CPU with SmolLM2-135M: one 32-token request took 74 s (paged cache
sized for a GPU), so the loop here is our own, on transformers' ``DynamicCache``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

# How many prompts are prefilled in one forward pass when many arrive at once: bounds how
# long the running requests stall for newcomers.
PREFILL_CHUNK = 8
_END = object()  # end of a request's stream


class GenerationError(Exception):
    """The model failed while generating; the caller falls back to its grounded text."""


class GenerationTimeout(GenerationError):
    """The model did not finish within the caller's time budget."""


@dataclass
class _Request:
    prompt: list[int]
    max_new_tokens: int
    out: queue.Queue[object] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
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


class GenerationService:
    """Continuous-batching generation on one model; thread-safe ``stream``/``generate``."""

    def __init__(self, model: Any, tokenizer: Any, device: str, max_batch: int = 32) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_batch = max(1, max_batch)
        self.stats = Stats()
        self.eos_ids = _eos_ids(model, tokenizer)
        self._pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="llm-generation", daemon=True)
        self._thread.start()

    # --- callers' side -------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids of chat ``messages`` (role/content dicts), ready to continue: the
        model's chat template, or plain "role: text" lines for a base model without one."""
        if getattr(self.tokenizer, "chat_template", None):
            text = str(
                self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            )
        else:
            lines = [f"{m['role']}: {m['content']}" for m in messages]
            text = "\n".join([*lines, "assistant:"])
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self, messages: list[dict[str, str]], max_new_tokens: int, timeout_s: float = 600.0
    ) -> Generator[str, None, None]:
        """Generate greedily for chat ``messages``, yielding text pieces as they are decoded.

        Closing the iterator early (``break``, ``close()``) takes the request out of the batch
        at the next step. Raises ``GenerationError`` when the model fails, and
        ``GenerationTimeout`` once ``timeout_s`` has passed.
        """
        deadline = time.monotonic() + timeout_s
        req = _Request(self.prompt_ids(messages), max(1, max_new_tokens))
        self._queue.put(req)
        try:
            while True:
                try:
                    item = req.out.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    raise GenerationTimeout(f"the LLM took over {timeout_s:g}s") from None
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise GenerationError(f"generation failed: {item}") from item
                yield str(item)
        finally:
            req.cancelled.set()

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
            if not batch.requests:
                continue
            try:
                with torch.inference_mode():
                    self._step(batch)
            except Exception as exc:  # every waiting caller gets the failure, none hangs
                log.exception("generation step failed")
                for req in batch.requests:
                    req.out.put(exc)
                batch.clear()

    def _admit(self, batch: _Batch) -> None:
        """Take waiting requests into the batch (blocking only when it is empty)."""
        joining: list[_Request] = []
        if not batch.requests:
            joining.append(self._queue.get())
        while len(batch.requests) + len(joining) < self.max_batch:
            try:
                joining.append(self._queue.get_nowait())
            except queue.Empty:
                break
        joining = [r for r in joining if not r.cancelled.is_set()]
        self.stats.requests += len(joining)
        for start in range(0, len(joining), PREFILL_CHUNK):
            group = joining[start : start + PREFILL_CHUNK]
            try:
                with torch.inference_mode():
                    self._prefill(batch, group)
            except Exception as exc:
                log.exception("prefill failed")
                for req in group:
                    req.out.put(exc)

    def _prefill(self, batch: _Batch, group: list[_Request]) -> None:
        width = max(len(r.prompt) for r in group)
        ids = torch.full((len(group), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, req in enumerate(group):
            ids[i, width - len(req.prompt) :] = torch.tensor(req.prompt)
            mask[i, width - len(req.prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        from transformers import DynamicCache

        cache = DynamicCache()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        )
        self.stats.prefills += 1
        first = out.logits[:, -1, :].argmax(-1)
        batch.merge(group, cache, mask, first)
        self._emit(batch, range(len(batch.requests) - len(group), len(batch.requests)))

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
        for row in rows:
            req, token = batch.requests[row], int(newest[row])
            if req.cancelled.is_set():
                done.append(row)
                continue
            finished = token in self.eos_ids
            if not finished:
                req.tokens.append(token)
                self.stats.tokens += 1
                self._send_text(req, final=False)
            if finished or len(req.tokens) >= req.max_new_tokens:
                self._send_text(req, final=True)
                req.out.put(_END)
                done.append(row)
        if done:
            batch.drop(done)

    def _send_text(self, req: _Request, final: bool) -> None:
        text = self.tokenizer.decode(req.tokens, skip_special_tokens=True)
        # A multi-byte character split across tokens decodes as U+FFFD until it is whole.
        if not final and text.endswith("\ufffd"):
            return
        if len(text) > req.sent_chars:
            req.out.put(text[req.sent_chars :])
            req.sent_chars = len(text)


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
