"""Batch concurrent LLM generations: requests from several threads are collected for up to
``wait_ms`` (or until ``max_batch`` are waiting) and run as one padded batch.

One background thread owns the model calls, so the model is never used by two threads at
once; a lone request waits at most ``wait_ms`` before it runs alone.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field


@dataclass
class GenRequest:
    """One prompt (chat messages) and its token budget."""

    messages: list[dict[str, str]]
    max_new_tokens: int
    future: Future[str] = field(default_factory=Future)


RunBatch = Callable[[Sequence[GenRequest]], list[str]]


class GenerationBatcher:
    """Collects ``GenRequest``s into batches for ``run_batch`` (one call per batch)."""

    def __init__(self, run_batch: RunBatch, max_batch: int, wait_ms: int) -> None:
        self._run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0, wait_ms) / 1000.0
        self._queue: queue.Queue[GenRequest] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="llm-batcher", daemon=True)
        self._thread.start()
        self.batches_run = 0  # for benchmarks: how many model calls served the requests

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        """Queue one prompt and block until its text is generated."""
        req = GenRequest(messages, max_new_tokens)
        self._queue.put(req)
        return req.future.result()

    def _collect(self) -> list[GenRequest]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._collect()
            try:
                texts = self._run_batch(batch)
            except Exception as exc:  # hand the failure to every waiting caller
                for req in batch:
                    req.future.set_exception(exc)
                continue
            self.batches_run += 1
            for req, text in zip(batch, texts, strict=True):
                req.future.set_result(text)
