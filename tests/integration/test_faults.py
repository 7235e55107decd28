"""Fault tests on real processes: break a worker, a gateway, Redis or the platform on purpose in
the middle of a conversation, then check that every message acknowledged to the platform got
its reply exactly once, in order, and that the conversation goes on.

The stack runs on its own Redis server (append-only file, fsync always), so a restart or an ACL
change here does not disturb the other tests. Lock TTL, sweep interval and turn time limit are
set short through the settings, so each fault resolves in seconds instead of minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import redis

from tests.conftest import chat, stack_env, uid
from tests.fakes.telegram import FakeTelegram, next_id, text_update
from tests.integration.test_telegram import post, texts
from tests.support.servers import ROOT, Proc, RedisServer, Stack, free_port, until, wait_for

SHORT = {
    "OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain",
    "OMNIGATE_LOCK_TTL": "3",
    "OMNIGATE_SWEEP_EVERY": "1",
    "OMNIGATE_TURN_TIME_LIMIT": "5",
    "OMNIGATE_TURN_MAX_ATTEMPTS": "2",
    "OMNIGATE_REPLY_CLAIM_IDLE_MS": "1000",
}
APOLOGY = "Sorry, something went wrong on our side. Please try again in a moment."
SETTLE_S = 2.0  # after the last expected reply: time for a double to show up, were there one


@pytest.fixture(scope="module")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("faults-redis"), persistent=True)
    yield server
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def faults(
    fault_redis: RedisServer,
    platform_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Gateway + one prefork worker (two children) with short lock, sweep and time limits."""
    stack = _short_stack(
        "faults",
        fault_redis.url(0),
        {**platform_env, "OMNIGATE_GATEWAY_ID": "faults-gw"},
        "prefork",
        tmp_path_factory,
    )
    yield stack
    stack.stop()


def _short_stack(
    name: str, redis_url: str, env: dict[str, str], pool: str, tmp: pytest.TempPathFactory
) -> Stack:
    """A started gateway + worker (two children or threads) with the ``SHORT`` settings."""
    stack = Stack(
        name,
        stack_env(redis_url, {**env, **SHORT}),
        tmp.mktemp(name),
        free_port(),
        ["--pool", pool, "--concurrency", "2", "--hostname", f"{name}@%h"],
    )
    stack.start()
    return stack


def _r(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url)


async def _say(http: aiohttp.ClientSession, stack: Stack, update: dict[str, Any]) -> int:
    status, _ = await post(http, stack, update)
    return status


async def _turn_started(stack: Stack, conv: str) -> None:
    r = _r(stack)
    await until(lambda: r.llen(f"og:processing:{conv}") == 1, 30, f"the turn of {conv} to start")


async def _exactly(fake: FakeTelegram, chat_id: int, expected: list[str], timeout: float) -> None:
    """Wait for ``expected`` in ``chat_id``, then a moment more: nothing else may arrive."""
    await fake.wait_for(chat_id, len(expected), timeout=timeout)
    await asyncio.sleep(SETTLE_S)
    assert texts(fake.calls_for(chat_id)) == expected


def _history(stack: Stack, conv: str) -> list[str]:
    raw = _r(stack).get(f"og:session:{conv}")
    return [h["text"] for h in json.loads(raw or b'{"history": []}')["history"]]


def _extra_worker(stack: Stack, name: str, *args: str) -> Proc:
    proc = Proc(name, ["worker", *args, "--hostname", f"{name}@%h"], stack.env, stack.log_dir)
    proc.start()
    return proc


def _signal_group(proc: Proc, sig: signal.Signals) -> None:
    assert proc.proc is not None
    os.killpg(proc.proc.pid, sig)


# --- workers ---------------------------------------------------------------------------------


async def test_a_worker_killed_mid_turn_sends_one_reply(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    chat_id = next_id()
    assert await _say(http, faults, text_update(chat_id, "sleep: 3 survived")) == 200
    await _turn_started(faults, f"telegram:{chat_id}")
    faults.worker.kill()
    faults.worker.start()  # as its supervisor would
    await _exactly(fake_telegram, chat_id, ["survived"], timeout=90)
    assert _history(faults, f"telegram:{chat_id}") == ["sleep: 3 survived", "survived"]


async def test_a_turn_that_lost_its_lock_mid_turn_sends_one_reply(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    # The worker stalls (SIGSTOP) longer than the lock TTL; a second worker's sweeper finds the
    # conversation unlocked and answers it. When the first wakes up, its turn must not commit.
    chat_id = next_id()
    conv = f"telegram:{chat_id}"
    assert await _say(http, faults, text_update(chat_id, "sleep: 2 once")) == 200
    await _turn_started(faults, conv)
    _signal_group(faults.worker, signal.SIGSTOP)
    second = _extra_worker(faults, "faults-rescuer", "--pool", "threads", "--concurrency", "2")
    try:
        await fake_telegram.wait_for(chat_id, 1, timeout=90)
        _signal_group(faults.worker, signal.SIGCONT)
        await asyncio.sleep(2 + SETTLE_S)  # the stalled turn's sleep ends and it tries to commit
        assert texts(fake_telegram.calls_for(chat_id)) == ["once"]
        assert _history(faults, conv) == ["sleep: 2 once", "once"]
    finally:
        _signal_group(faults.worker, signal.SIGCONT)
        second.stop()
    assert "lost its lock" in faults.worker.log()


async def test_a_message_that_kills_its_worker_is_dead_lettered_with_an_apology(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    chat_id = next_id()
    assert await _say(http, faults, text_update(chat_id, "crash")) == 200
    await _exactly(fake_telegram, chat_id, [APOLOGY], timeout=120)
    assert await _say(http, faults, text_update(chat_id, "echo: still here")) == 200
    await _exactly(fake_telegram, chat_id, [APOLOGY, "echo: still here"], timeout=60)

    out = _cli(faults, "dead-letters", "--json")
    [entry] = [
        d for d in map(json.loads, out.splitlines()) if d["conversation"].endswith(str(chat_id))
    ]
    assert entry["reason"].startswith("gave up after 2 attempts")
    assert json.loads(entry["raw"])["text"] == "crash"


async def test_an_unreadable_stored_message_is_dead_lettered_and_the_conversation_goes_on(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    chat_id = next_id()
    conv = f"telegram:{chat_id}"
    _r(faults).rpush(f"og:inbox:{conv}", b"\x00not json at all")
    assert await _say(http, faults, text_update(chat_id, "echo: after the bad one")) == 200
    await _exactly(fake_telegram, chat_id, ["echo: after the bad one"], timeout=60)
    out = _cli(faults, "dead-letters", "--json")
    [entry] = [d for d in map(json.loads, out.splitlines()) if d["conversation"] == conv]
    assert entry["reason"].startswith("unreadable")


async def test_a_message_stored_by_a_newer_gateway_with_unknown_fields_is_answered(
    http: aiohttp.ClientSession, faults: Stack
) -> None:
    # A rolling deploy: the newer gateway's messages carry a field this worker does not know.
    user = uid("u")
    conv = f"api:{user}"
    message = {
        "id": uid("m"),
        "channel": "api",
        "platform_id": uid("p"),
        "user": {"id": user, "pronouns": "they"},
        "conversation": user,
        "text": "echo: from the future",
        "priority": "high",
    }
    r = _r(faults)
    r.rpush(f"og:inbox:{conv}", json.dumps(message))
    r.sadd("og:active", conv)
    await until(lambda: "echo: from the future" in _history(faults, conv), 30, "the turn")
    assert _history(faults, conv)[-1] == "echo: from the future"


# --- time limits, in every pool ------------------------------------------------------------


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
async def test_a_turn_past_its_time_limit_gets_an_apology_and_the_conversation_goes_on(
    http: aiohttp.ClientSession,
    fault_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
    pool: str,
) -> None:
    env = stack_env(fault_redis.url(2), {**SHORT, "OMNIGATE_GATEWAY_ID": f"limit-{pool}"})
    stack = Stack(
        f"limit-{pool}",
        env,
        tmp_path_factory.mktemp(f"limit-{pool}"),
        free_port(),
        ["--pool", pool, "--concurrency", "1", "--hostname", f"limit-{pool}@%h"],
    )
    stack.start()
    try:
        user = uid("u")
        # `hang` ignores every interruption, as a stuck generation on a GPU would.
        assert [x["text"] for x in await chat(http, stack, user, "hang: 30 too late")] == [APOLOGY]
        assert [x["text"] for x in await chat(http, stack, user, "echo: next")] == ["echo: next"]
    finally:
        stack.stop()


# --- gateways ----------------------------------------------------------------------------------


async def test_a_gateway_killed_with_replies_pending_delivers_each_once_after_restart(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    chats = [next_id(), next_id()]
    for c in chats:
        assert await _say(http, faults, text_update(c, "sleep: 2 while-down")) == 200
    await _turn_started(faults, f"telegram:{chats[0]}")
    faults.gateway.kill()
    r = _r(faults)
    await until(
        lambda: all(not r.exists(f"og:processing:telegram:{c}") for c in chats),
        60,
        "the turns to finish with no gateway",
    )
    faults.start_gateway()
    for c in chats:
        await _exactly(fake_telegram, c, ["while-down"], timeout=60)


async def test_an_undeliverable_pending_reply_does_not_hold_back_new_replies_after_a_restart(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    # An entry this gateway can never deliver sits in its own pending history when it restarts.
    faults.gateway.stop()
    r = _r(faults)
    r.xadd("og:replies", {"kind": "reply", "data": '{"channel": "fax", "conversation": "1"}'})
    r.xreadgroup("gateway", "faults-gw", {"og:replies": ">"}, count=10)
    faults.start_gateway()
    chat_id = next_id()
    assert await _say(http, faults, text_update(chat_id, "echo: not held back")) == 200
    await _exactly(fake_telegram, chat_id, ["echo: not held back"], timeout=60)
    await until(lambda: "fax" in _cli(faults, "dead-letters", "--json"), 30, "the dead reply")


async def test_a_multi_part_reply_keeps_its_place_across_two_replicas(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    # A 12 000-character reply is three Telegram messages at one a second per chat: it takes
    # longer than any fixed wait a replica holding the next reply might give it.
    env = {**faults.env, "OMNIGATE_GATEWAY_ID": "faults-gw-2"}
    port = free_port()
    second = Proc("faults-gateway-2", ["gateway", "--port", str(port)], env, faults.log_dir)
    second.start()
    try:
        await until(lambda: b"faults-gw-2" in _consumers(faults), 60, "the second replica")
        chat_id = next_id()
        for text in ("long: 12000", "echo: a", "echo: b", "two", "echo: c"):
            assert await _say(http, faults, text_update(chat_id, text)) == 200
        await fake_telegram.wait_for(chat_id, 8, timeout=90)
        await asyncio.sleep(SETTLE_S)
        sent = texts(fake_telegram.calls_for(chat_id))
        assert sent[3:] == ["echo: a", "echo: b", "first", "second", "echo: c"]
        assert "".join(sent[:3]) == ("word " * 2401)[:12000]
        assert int(_r(faults).get(f"og:delivered:telegram:{chat_id}") or 0) == 6
    finally:
        second.stop()


def _consumers(stack: Stack) -> bytes:
    return b" ".join(c["name"] for c in _r(stack).xinfo_consumers("og:replies", "gateway"))


# --- Redis -------------------------------------------------------------------------------------


async def test_redis_restarted_mid_turn_the_turn_finishes_once_and_the_next_works(
    http: aiohttp.ClientSession,
    faults: Stack,
    fault_redis: RedisServer,
    fake_telegram: FakeTelegram,
) -> None:
    chat_id = next_id()
    assert await _say(http, faults, text_update(chat_id, "sleep: 2 across the restart")) == 200
    await _turn_started(faults, f"telegram:{chat_id}")
    fault_redis.proc.kill()  # no clean shutdown; the append-only file has every write
    fault_redis.proc.wait(10)
    await asyncio.sleep(3)
    fault_redis.start()
    await _exactly(fake_telegram, chat_id, ["across the restart"], timeout=120)
    assert await _say(http, faults, text_update(chat_id, "echo: and after")) == 200
    await _exactly(fake_telegram, chat_id, ["across the restart", "echo: and after"], 60)


async def test_redis_refusing_writes_during_ingress_the_platform_retry_is_answered_once(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    # A gateway of its own signs in to Redis as "ingress", and Redis refuses that user every
    # write but SET: the old ingress stored the dedupe mark, then failed, and the platform's
    # retry was dropped as a duplicate. (Only this gateway's user, so the workers, which exit
    # on a broker that refuses writes, keep answering.)
    admin = _r(faults)
    admin.execute_command("ACL", "SETUSER", "ingress", "on", ">ingress-pw", "~*", "&*", "+@all")
    url = faults.redis_url.replace("redis://", "redis://ingress:ingress-pw@")
    env = {**faults.env, "OMNIGATE_REDIS_URL": url, "OMNIGATE_GATEWAY_ID": "faults-acl"}
    port = free_port()
    gateway = Proc("faults-gateway-acl", ["gateway", "--port", str(port)], env, faults.log_dir)
    gateway.start()
    own = Stack.__new__(Stack)
    own.url = f"http://127.0.0.1:{port}"
    try:
        await until(lambda: own._get("/healthz") == 200, 60, "the ingress gateway")
        chat_id = next_id()
        update = text_update(chat_id, "echo: retried")
        admin.execute_command("ACL", "SETUSER", "ingress", "-@write", "+set")
        try:
            assert await _say(http, own, update) == 503
        finally:
            admin.execute_command("ACL", "SETUSER", "ingress", "+@all")
        assert await _say(http, own, update) == 200  # Telegram re-sends the same update
        assert await _say(http, own, update) == 200  # and once more, for good measure
        await _exactly(fake_telegram, chat_id, ["echo: retried"], timeout=60)
    finally:
        gateway.stop()


# --- the platform ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502])
async def test_a_platform_refusing_sends_for_a_while_delays_replies_without_loss_or_double(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram, status: int
) -> None:
    chats = [next_id(), next_id(), next_id()]
    fake_telegram.refuse_for(8, status)
    for i in range(3):
        for c in chats:
            assert await _say(http, faults, text_update(c, f"echo: {c}-{i}")) == 200
    for c in chats:
        await _exactly(fake_telegram, c, [f"echo: {c}-{i}" for i in range(3)], timeout=90)
    refused = [x for x in fake_telegram.calls_of("sendMessage") if x.answered == str(status)]
    assert refused  # the window did refuse sends


async def test_waiting_conversations_are_queued_once_however_many_sweepers_run(
    http: aiohttp.ClientSession, faults: Stack, fake_telegram: FakeTelegram
) -> None:
    # No worker takes turns for a while; four prefork children (four sweepers) look at the
    # waiting conversations every second. Each conversation must be in the queue once.
    r = _r(faults)
    alive = r.zcard("og:workers")
    _signal_group(faults.worker, signal.SIGSTOP)
    sweepers = _extra_worker(faults, "faults-sweepers", "--queues", "deliver", "--concurrency", "4")
    chats = [next_id() for _ in range(10)]
    try:
        await until(lambda: r.zcard("og:workers") >= alive + 4, 60, "four more sweepers")
        for c in chats:
            for i in range(2):
                assert await _say(http, faults, text_update(c, f"echo: {i}")) == 200
        await asyncio.sleep(4)  # four sweeps of four sweepers
        assert r.llen("og:celery:brain") <= len(chats)
    finally:
        _signal_group(faults.worker, signal.SIGCONT)
        sweepers.stop()
    for c in chats:
        await _exactly(fake_telegram, c, ["echo: 0", "echo: 1"], timeout=90)


# --- inbound limits ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(
    fault_redis: RedisServer,
    platform_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack with small inbound limits: 3 waiting messages, 5 a minute per conversation,
    20 a minute per client address."""
    limits = {
        "OMNIGATE_GATEWAY_ID": "limited-gw",
        "OMNIGATE_INBOX_MAX": "3",
        "OMNIGATE_RATE_CONVERSATION": "5",
        "OMNIGATE_RATE_ADDRESS": "20",
    }
    stack = _short_stack(
        "limited", fault_redis.url(1), {**platform_env, **limits}, "threads", tmp_path_factory
    )
    yield stack
    stack.stop()


async def test_a_full_inbox_refuses_the_next_message_with_a_clear_error(
    http: aiohttp.ClientSession, limited: Stack, fake_telegram: FakeTelegram
) -> None:
    chat_id = next_id()
    assert await _say(http, limited, text_update(chat_id, "sleep: 3 slow")) == 200
    await _turn_started(limited, f"telegram:{chat_id}")
    for i in range(3):
        assert await _say(http, limited, text_update(chat_id, f"echo: {i}")) == 200
    status, body = await post(http, limited, text_update(chat_id, "echo: one too many"))
    assert status == 429
    assert "3 messages are already waiting" in body["error"]
    await _exactly(fake_telegram, chat_id, ["slow", "echo: 0", "echo: 1", "echo: 2"], 60)


async def test_too_many_messages_in_one_conversation_get_a_clear_error(
    http: aiohttp.ClientSession, limited: Stack, fake_telegram: FakeTelegram
) -> None:
    chat_id = next_id()
    for i in range(5):
        assert await _say(http, limited, text_update(chat_id, f"echo: {i}")) == 200
        await fake_telegram.wait_for(chat_id, i + 1, timeout=30)
    status, body = await post(http, limited, text_update(chat_id, "echo: sixth"))
    assert status == 429
    assert "at most 5 messages a minute" in body["error"]


async def test_too_many_messages_from_one_address_get_a_clear_error(
    http: aiohttp.ClientSession, limited: Stack
) -> None:
    statuses = []
    for _ in range(25):
        async with http.post(
            f"{limited.url}/api/chat", json={"user": uid("u"), "text": "echo: hi"}
        ) as resp:
            statuses.append(resp.status)
            body = await resp.json()
    assert statuses.count(200) == 20 and statuses[-1] == 429
    assert "from your address" in body["error"]


# --- the CLI -----------------------------------------------------------------------------------


def _cli(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_dead_letters_are_listed_in_plain_words(faults: Stack) -> None:
    conv = f"telegram:{next_id()}"
    _r(faults).rpush(f"og:inbox:{conv}", b"{broken")
    _r(faults).sadd("og:active", conv)
    # Wait for this conversation's line: earlier tests on the stack leave unreadable entries.
    wait_for(lambda: conv in _cli(faults, "dead-letters"), 30, "the sweeper to find it")
    line = next(x for x in _cli(faults, "dead-letters").splitlines() if conv in x)
    assert "unreadable" in line
