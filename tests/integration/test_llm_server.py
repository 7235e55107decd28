"""Any LLM server: generation sent to a real OpenAI-compatible chat-completions server,
streamed, with the same grounding; a dead or slow server costs the turn its time budget and
never more.

The servers are real: ``transformers serve`` (the Hugging Face server, from PyPI) on the
cached SmolLM2 weights, offline, and omnigate's own generation service (``omnigate
llm-server``), which every worker host runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from brain.generation import GenerationBusy, GenerationError, GenerationTimeout
from brain.generation_grounded import delta_sink, release_checked
from brain.grounding import Facts
from brain.llm import RemoteLlm, ensure_smollm2
from gateway.settings import load_settings
from tests.support.servers import ROOT, free_port, wait_for

# Two servers start (each loads the model) and generate on the CPU: more than the default limit.
pytestmark = pytest.mark.timeout(2400)

HELLO = [{"role": "user", "content": "Say hello to a customer of an outdoor shop."}]
# The model is asked to state a tracking number nobody gave it.
INVENT = [
    {
        "role": "user",
        "content": "Repeat exactly: Your order has shipped. "
        "Your tracking number is 1Z999AA10123456784.",
    }
]
SHIPPED = Facts("Your order has shipped.")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def weights() -> Path:
    return ensure_smollm2(load_settings().brain_config())


@pytest.fixture(scope="module")
def transformers_serve(weights: Path) -> Iterator[str]:
    """``transformers serve`` with the SmolLM2 weights, offline; yields its /v1 base URL."""
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert exe is not None, "transformers' CLI is missing (pip install -e '.[dev]')"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [exe, "serve", str(weights), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=env,
    )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/v1/models"), 240, "transformers serve")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def omnigate_llm_server() -> Iterator[str]:
    """``omnigate llm-server`` (the worker host's generation service), with an admission
    budget no reply fits, so only a request to an idle server starts; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMNIGATE_DEVICE": "cpu",
        "OMNIGATE_LLM_ADMIT_S": "0.000001",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "llm-server", "--port", str(port)], env=env
    )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), 240, "omnigate llm-server")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


def _client(url: str, model: str, timeout_s: float = 600.0) -> RemoteLlm:
    # A generous budget: the shared CPU of a test machine may be slow, and a timeout here
    # would test the budget, not the server.
    return RemoteLlm(url, model, api_key=None, max_new_tokens=40, timeout_s=timeout_s)


def _released(llm: RemoteLlm, messages: list[dict[str, str]], facts: Facts) -> tuple[str, str]:
    """(what the customer was sent, the released text) of one grounded stream."""
    shown: list[str] = []
    token = delta_sink.set(shown.append)
    try:
        result = release_checked(llm.stream(messages, 40), facts)
    finally:
        delta_sink.reset(token)
    return "".join(shown), result.text


def test_transformers_serve_streams_a_reply(transformers_serve: str, weights: Path) -> None:
    pieces = list(_client(transformers_serve, str(weights)).stream(HELLO, 24))
    assert len(pieces) > 1  # streamed, not in one piece
    assert "hello" in "".join(pieces).lower()


def test_an_invented_tracking_number_from_the_server_never_passes(
    transformers_serve: str, weights: Path
) -> None:
    llm = _client(transformers_serve, str(weights))
    unchecked = "".join(llm.stream(INVENT, 40))
    assert "1Z999AA10123456784" in unchecked  # the model does write it
    shown, text = _released(llm, INVENT, SHIPPED)
    assert "1Z999AA10123456784" not in shown
    assert "1Z999AA10123456784" not in text


def test_omnigate_llm_server_streams_the_same_way(omnigate_llm_server: str) -> None:
    pieces = list(_client(omnigate_llm_server, "smollm2").stream(HELLO, 24))
    assert len(pieces) > 1
    assert "hello" in "".join(pieces).lower()
    shown, _ = _released(_client(omnigate_llm_server, "smollm2"), INVENT, SHIPPED)
    assert "1Z999AA10123456784" not in shown


def test_a_busy_server_answers_at_once_that_it_is_busy(omnigate_llm_server: str) -> None:
    running = _client(omnigate_llm_server, "smollm2").stream(HELLO, 96)
    next(running)  # the server is generating now
    with pytest.raises(GenerationBusy):
        list(_client(omnigate_llm_server, "smollm2").stream(HELLO, 24))
    running.close()


def test_a_client_that_hangs_up_frees_the_server_for_the_next_turn(
    omnigate_llm_server: str,
) -> None:
    # As when grounding refuses a clause: the turn stops reading and hangs up; the next turn,
    # right after, must find the server idle, not busy with a reply nobody reads.
    abandoned = _client(omnigate_llm_server, "smollm2").stream(HELLO, 96)
    next(abandoned)
    abandoned.close()
    assert list(_client(omnigate_llm_server, "smollm2").stream(HELLO, 8))


def test_a_dead_server_fails_at_once() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens there
    with pytest.raises(GenerationError):
        list(_client(dead, "smollm2", timeout_s=5).stream(HELLO, 8))


def test_a_silent_server_costs_the_time_budget_and_no_more() -> None:
    # A server that accepts the connection and never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
        port = listener.getsockname()[1]
        with pytest.raises(GenerationTimeout):
            list(_client(f"http://127.0.0.1:{port}/v1", "smollm2", timeout_s=1.0).stream(HELLO, 8))
        for conn in accepted:
            conn.close()
