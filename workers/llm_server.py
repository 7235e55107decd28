"""The worker host's generation service: one process that holds the LLM and batches the
generations of every turn on the host (``brain.generation``), behind an OpenAI-compatible
chat-completions API (``POST /v1/chat/completions``, streamed as server-sent events or not;
``GET /v1/models``; ``GET /health``).

``omnigate worker`` starts one (``start_generation_service``) before its pool, unless
``OMNIGATE_LLM_URL`` already names a server or the LLM is off, and points its turns at it:
every pool child, prefork or threads, then shares one model and one running batch, and a
turn waiting for words holds no CPU. ``omnigate llm-server`` runs it alone. A request that
admission turns away (``OMNIGATE_LLM_ADMIT_S``) is answered 503 at once, as an overloaded
vLLM or TGI answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from typing import Any

from aiohttp import web

from brain.config import limit_cpu_threads
from brain.generation import GenerationBusy, GenerationError, GenerationService, ReplyStream
from brain.llm import load_model
from gateway.settings import ConfigError, Settings, child_env

log = logging.getLogger(__name__)

SERVICE_KEY = web.AppKey("service", GenerationService)
NAME_KEY = web.AppKey("model_name", str)
# Loading the model (and, the first time, dequantising SmolLM2) takes this long at most.
START_TIMEOUT_S = 300.0
_STOP = object()


def create_llm_app(service: GenerationService, model_name: str, max_tokens: int) -> web.Application:
    """The aiohttp application of the chat-completions API around ``service``."""
    app = web.Application()
    app[SERVICE_KEY] = service
    app[NAME_KEY] = model_name

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def models(_: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": model_name, "object": "model"}]}
        )

    async def completions(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            messages = [
                {"role": str(m["role"]), "content": str(m["content"])} for m in body["messages"]
            ]
            budget = min(int(body.get("max_tokens") or max_tokens), max_tokens)
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"error": "expected JSON with messages: [{role, content}], max_tokens?: int"},
                status=400,
            )
        try:
            # Templating and tokenizing the prompt is CPU work: off the event loop.
            stream = await asyncio.to_thread(service.stream, messages, budget)
        except GenerationBusy as exc:
            # Overloaded, as vLLM or TGI answer it: the client sends its own text at once.
            return web.json_response(
                {"error": {"message": str(exc), "type": "busy"}},
                status=503,
                headers={"Retry-After": "1"},
            )
        try:
            if body.get("stream"):
                return await _stream(request, stream, model_name)
            text = "".join([piece async for piece in _pieces(stream)])
        except GenerationError as exc:
            return web.json_response({"error": str(exc)}, status=503)
        finally:
            # Whatever ended the handler (the end, a failed write, a client that hung up and
            # so cancelled it): the reply leaves the batch, and the pump's wait ends.
            stream.close()
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", completions)
    return app


async def _pieces(stream: ReplyStream) -> Any:
    """A generation's text pieces, read on a thread and handed to the event loop. The caller
    closes ``stream`` when it stops reading; that also ends the thread's wait."""
    loop = asyncio.get_running_loop()
    handoff: asyncio.Queue[object] = asyncio.Queue()

    def pump() -> None:
        try:
            for piece in stream:
                loop.call_soon_threadsafe(handoff.put_nowait, piece)
        except GenerationError as exc:
            loop.call_soon_threadsafe(handoff.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(handoff.put_nowait, _STOP)

    threading.Thread(target=pump, name="llm-request", daemon=True).start()
    while (item := await handoff.get()) is not _STOP:
        if isinstance(item, GenerationError):
            raise item
        yield str(item)


async def _stream(request: web.Request, stream: ReplyStream, model_name: str) -> web.StreamResponse:
    """The reply as chat-completion chunks over server-sent events."""
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

    async def send(delta: dict[str, str], finish: str | None = None) -> None:
        chunk = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

    # A reader gone away, or a failed generation: the stream just ends (no [DONE]).
    with contextlib.suppress(ConnectionResetError, GenerationError):
        await send({"role": "assistant"})
        async for piece in _pieces(stream):
            await send({"content": piece})
        await send({}, "stop")
        await resp.write(b"data: [DONE]\n\n")
    return resp


def serve(settings: Settings, host: str, port: int) -> None:
    """Load the model and serve it until SIGTERM/SIGINT, or until the parent process (the
    worker that started us) is gone."""
    # Beside the worker's turns on the same cores: see OMNIGATE_TORCH_THREADS.
    limit_cpu_threads(settings.torch_threads)
    model, tokenizer, device = load_model(settings.brain_config())
    service = GenerationService(
        model, tokenizer, device, settings.llm_batch_size, settings.llm_admit_s
    )
    log.info(
        "generation service: %s on %s, batches up to %d",
        settings.llm_model,
        device,
        service.max_batch,
    )
    app = create_llm_app(service, settings.llm_model, settings.llm_max_new_tokens)
    threading.Thread(target=_stop_with_parent, args=(os.getppid(),), daemon=True).start()
    # handler_cancellation: a client that hangs up (the turn's grounding refused a clause)
    # cancels its handler, so its reply leaves the batch now, not a token later.
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        handle_signals=True,
        access_log=None,
        handler_cancellation=True,
    )


def _stop_with_parent(parent: int) -> None:
    """SIGTERM ourselves once the worker that started us is gone (killed, crashed): an
    orphaned service would hold the model's memory for nobody."""
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("the worker that started this generation service is gone; stopping")
    os.kill(os.getpid(), signal.SIGTERM)


class GenerationProcess:
    """A generation service started by this process (``omnigate llm-server`` as a child)."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_generation_service(settings: Settings, port: int) -> GenerationProcess:
    """Start ``omnigate llm-server`` on 127.0.0.1:``port`` and wait until its model is
    loaded; its ``url`` is the ``OMNIGATE_LLM_URL`` for this host's turns."""
    cmd = [sys.executable, "-m", "gateway.cli", "llm-server", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=child_env(settings))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"the generation service exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as resp:
                if resp.status == 200:
                    return GenerationProcess(proc, f"{base}/v1")
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise ConfigError(f"the generation service did not start within {START_TIMEOUT_S:.0f}s")
