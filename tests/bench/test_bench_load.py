"""Load through ``omnigate run`` with the real shop brain (LLM off): many web conversations over
websockets and a stream of Telegram updates at once, for a fixed time. Every message must be
answered exactly once and in order; throughput and p50/p99 latency are reported as one JSON
line, next to the baseline of this run: the same brain answering the same messages alone, in
this process, one after the other (``brain_turns_per_s``, ``brain_turn_ms``).

Phases: ``web100`` (100 conversations alone: the latency target) and ``web200+telegram`` (200
conversations and the Telegram stream). A conversation sends its next message THINK_S after its
previous one is answered (a fast typist; the widget allows one message a second after a burst).

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_load.py``); shorter with
``--bench-seconds 20``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.bench.conftest import summary
from tests.conftest import WEB_SECRET
from tests.fakes.telegram import SECRET, FakeTelegram, next_id, text_update
from tests.support.servers import ROOT, RedisServer, Stack, free_port, until

pytestmark = pytest.mark.bench

# What shoppers say, in this order, again and again (no order lookups: those wait for an email).
CYCLE = [
    "hi",
    "do you have trail running shoes under 110?",
    "what is your return policy?",
    "whats the cheapest tent you have",
    "how long does shipping take?",
    "do you accept paypal?",
    "thanks!",
]
MAX_MESSAGES = 40  # per conversation: the calibration covers this many
TELEGRAM_CHATS = 24
TELEGRAM_MESSAGES = 3  # per chat, one every TELEGRAM_GAP_S (1 message/s per chat at Telegram)
TELEGRAM_GAP_S = 4.0
THINK_S = 1.0


@dataclass
class Run:
    """What one `omnigate run` under load produced."""

    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    problems: list[str] = field(default_factory=list)


@contextmanager
def omnigate_run(
    workdir: Path, platform_env: dict[str, str], **settings: str
) -> Iterator[tuple[Stack, subprocess.Popen[bytes]]]:
    """``omnigate run`` on its own Redis server, ready; ``settings`` on top of the bench's."""
    server = RedisServer(workdir / "redis")
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            **platform_env,
            "PYTHONPATH": str(ROOT),
            "OMNIGATE_REDIS_URL": server.url(0),
            "OMNIGATE_WEB_SECRET": WEB_SECRET,
            "OMNIGATE_LLM_MODEL": "off",
            # Every simulated shopper is 127.0.0.1.
            "OMNIGATE_RATE_ADDRESS": "1000000",
            "OMNIGATE_WEB_NEW_SESSIONS_PER_MIN": "1000000",
            **settings,
        }
    )
    log = open(workdir / "run.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack = Stack.__new__(Stack)
    stack.url = f"http://127.0.0.1:{port}"
    stack.redis_url = server.url(0)
    try:
        deadline = time.monotonic() + 300
        while stack._get("/readyz") != 200:
            assert proc.poll() is None, (workdir / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "omnigate run did not get ready"
            time.sleep(0.5)
        yield stack, proc
    finally:
        proc.terminate()
        proc.wait(60)
        server.stop()


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, platform_env: dict[str, str]
) -> Iterator[tuple[Stack, subprocess.Popen[bytes]]]:
    """``omnigate run`` with the LLM off, on its own Redis server, with the fake Telegram."""
    with omnigate_run(tmp_path_factory.mktemp("load"), platform_env) as running:
        yield running


def _brain_alone() -> tuple[float, float]:
    """The baseline: turns/s and ms per turn of the same brain on the same messages."""
    from brain.config import limit_cpu_threads
    from brain.shop import ShopBrain
    from brain.types import Session, Turn
    from channels.schema import Inbound, User
    from gateway.settings import load_settings

    settings = load_settings(OMNIGATE_LLM_MODEL="off")
    limit_cpu_threads(settings.torch_threads)  # as in the worker
    brain = ShopBrain(settings.brain_config())
    session = Session()
    warm_up = Inbound(
        channel="api", platform_id="w", user=User(id="b"), conversation="b", text="hi"
    )
    brain.respond(Turn(message=warm_up, session=session))  # loads the models
    turns = 0
    started = time.perf_counter()
    for i in range(MAX_MESSAGES * 2):
        text = CYCLE[i % len(CYCLE)]
        msg = Inbound(
            channel="api", platform_id=str(i), user=User(id="b"), conversation="b", text=text
        )
        brain.respond(Turn(message=msg, session=session))
        turns += 1
    wall = time.perf_counter() - started
    return round(turns / wall, 1), round(wall / turns * 1000, 2)


async def _calibrate(
    http: aiohttp.ClientSession, url: str, count: int = MAX_MESSAGES
) -> list[list[str]]:
    """The replies of each of ``count`` messages of one conversation, answered one at a time:
    the brain has no randomness with the LLM off, so every conversation must get these."""
    user = f"cal-{uuid.uuid4().hex[:8]}"
    expected = []
    for i in range(count):
        body = {"user": user, "text": CYCLE[i % len(CYCLE)]}
        async with http.post(f"{url}/api/chat", json=body) as resp:
            assert resp.status == 200, await resp.text()
            expected.append([r["text"] for r in (await resp.json())["replies"]])
    return expected


async def _web_conversation(
    http: aiohttp.ClientSession,
    url: str,
    expected: list[list[str]],
    until_t: float,
    run: Run,
    exact: bool = True,
) -> None:
    """One shopper: the next message THINK_S after each answer, until ``until_t``. Each
    answer must be ``expected``'s replies (with ``exact=False``, as many of them: an LLM's
    words differ from run to run), in order, once."""
    async with http.post(f"{url}/web/session", json={}) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["token"]
    async with http.ws_connect(f"{url}/web/ws", heartbeat=None) as ws:
        await ws.send_json({"type": "auth", "token": token})
        last_seq = 0
        for i in range(len(expected)):
            if time.monotonic() >= until_t:
                break
            if i:
                await asyncio.sleep(THINK_S)
            started = time.monotonic()
            await ws.send_json({"type": "message", "id": f"m{i}", "text": CYCLE[i % len(CYCLE)]})
            got: list[str] = []
            while len(got) < len(expected[i]):
                frame = json.loads((await ws.receive(timeout=120)).data)
                if frame["type"] == "error":
                    run.problems.append(f"web error frame: {frame['error']}")
                    return
                if frame["type"] != "reply":
                    continue
                if frame["seq"] != last_seq + 1:
                    run.problems.append(f"web seq {frame['seq']} after {last_seq}")
                last_seq = frame["seq"]
                got.append(frame["reply"]["text"])
            run.latencies.append(time.monotonic() - started)
            run.answered += 1
            if (got if exact else len(got)) != (expected[i] if exact else len(expected[i])):
                run.problems.append(f"web message {i}: {got!r} != {expected[i]!r}")
        # Anything after the last expected reply would be a double.
        try:
            extra = await ws.receive(timeout=1.5)
            if extra.type == aiohttp.WSMsgType.TEXT and json.loads(extra.data)["type"] == "reply":
                run.problems.append(f"web: an extra reply {extra.data[:120]}")
        except TimeoutError:
            pass


def _sent(fake: FakeTelegram, chat: int) -> list[str]:
    calls = fake.calls_for(chat, method=None)
    return [
        c.params.get("text") or c.params.get("caption") or ""
        for c in calls
        if c.method in ("sendMessage", "sendPhoto")
    ]


async def _telegram_expected(
    http: aiohttp.ClientSession, url: str, fake: FakeTelegram
) -> list[list[str]]:
    """What Telegram receives for each message of one chat, answered one at a time."""
    chat = next_id()
    expected: list[list[str]] = []
    for i in range(TELEGRAM_MESSAGES):
        before = len(_sent(fake, chat))
        await _post_update(http, url, text_update(chat, CYCLE[i % len(CYCLE)]))
        await until(lambda n=before: len(_sent(fake, chat)) > n, 60, "a calibration reply")
        await asyncio.sleep(3)  # the last part of a multi-part reply, at 1 message/s
        expected.append(_sent(fake, chat)[before:])
    return expected


async def _post_update(http: aiohttp.ClientSession, url: str, update: dict[str, Any]) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with http.post(f"{url}/telegram/webhook", json=update, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def _telegram_stream(
    http: aiohttp.ClientSession,
    url: str,
    fake: FakeTelegram,
    expected: list[list[str]],
    run: Run,
) -> None:
    chats = [next_id() for _ in range(TELEGRAM_CHATS)]
    for i in range(TELEGRAM_MESSAGES):
        for n, chat in enumerate(chats):
            await _post_update(http, url, text_update(chat, CYCLE[i % len(CYCLE)]))
            await asyncio.sleep(TELEGRAM_GAP_S / len(chats) * (n < len(chats) - 1))
    want = [[text for message in expected for text in message]] * len(chats)
    for chat, flat in zip(chats, want, strict=True):
        try:
            await until(lambda c=chat, f=flat: len(_sent(fake, c)) >= len(f), 180, "replies")
        except TimeoutError:
            pass
    await asyncio.sleep(2)
    for chat, flat in zip(chats, want, strict=True):
        got = _sent(fake, chat)
        if got != flat:
            run.problems.append(f"telegram chat {chat}: {len(got)} sends, {len(flat)} expected")
        run.answered += TELEGRAM_MESSAGES


async def _phase(
    http: aiohttp.ClientSession,
    stack: Stack,
    fake: FakeTelegram,
    web: int,
    seconds: float,
    expected: list[list[str]],
    tg_expected: list[list[str]] | None,
) -> dict[str, Any]:
    run, tg_run = Run(), Run()
    until_t = time.monotonic() + seconds
    started = time.perf_counter()
    jobs = [_web_conversation(http, stack.url, expected, until_t, run) for _ in range(web)]
    if tg_expected is not None:
        jobs.append(_telegram_stream(http, stack.url, fake, tg_expected, tg_run))
    await asyncio.gather(*jobs)
    wall = time.perf_counter() - started
    figures: dict[str, Any] = {"web_conversations": web, **summary(run.latencies, wall)}
    figures["problems"] = run.problems[:5] + tg_run.problems[:5]
    figures["lost_or_doubled"] = len(run.problems) + len(tg_run.problems)
    if tg_expected is not None:
        figures["telegram_messages"] = tg_run.answered
    return figures


def test_bench_load_through_omnigate_run(
    system: tuple[Stack, subprocess.Popen[bytes]],
    fake_telegram: FakeTelegram,
    request: pytest.FixtureRequest,
) -> None:
    stack, _ = system
    seconds = float(request.config.getoption("--bench-seconds", 60.0))
    per_s, turn_ms = _brain_alone()

    async def go() -> dict[str, Any]:
        conn = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=180)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
            expected = await _calibrate(http, stack.url)
            tg_expected = await _telegram_expected(http, stack.url, fake_telegram)
            web100 = await _phase(http, stack, fake_telegram, 100, seconds, expected, None)
            web200 = await _phase(http, stack, fake_telegram, 200, seconds, expected, tg_expected)
        return {"web100": web100, "web200+telegram": web200}

    phases = asyncio.run(go())
    result = {
        "bench": "load",
        "seconds": seconds,
        "brain_turns_per_s": per_s,
        "brain_turn_ms": turn_ms,
        **phases,
        "throughput_ratio": round(phases["web100"]["per_s"] / per_s, 3),
        "p50_ratio": round(phases["web100"]["p50_ms"] / turn_ms, 1),
        "load_avg": os.getloadavg()[0],
    }
    print(json.dumps(result))
    assert phases["web100"]["lost_or_doubled"] == 0, phases["web100"]["problems"]
    assert phases["web200+telegram"]["lost_or_doubled"] == 0, phases["web200+telegram"]["problems"]
