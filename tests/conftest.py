"""Session fixtures: a real redis-server, real gateway and Celery worker processes, and the fake
platform servers. The stacks share the Redis server on separate databases:

- ``script_stack``: the pipeline with ``tests.support.script_brain.ScriptBrain`` (fast and
  scriptable), two worker processes — for ordering, dedupe, restarts and channel rendering;
- ``shop_stack``: the real shop brain with the real models — for what the customer hears;
- ``agents_stack``: the scripted brain with the web agents' console and no Slack.

Tests use fresh ids (``uid``) instead of flushing Redis between tests, so the running workers'
queues and heartbeats are never pulled from under them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.servers import ROOT, RedisServer, Stack, free_port

WEB_SECRET = "test-web-secret"
API_TOKEN = None  # /api/chat open in tests; the bearer check has its own test

# Fake platform servers register as plugins when their module exists.
pytest_plugins = [
    m
    for m in ("tests.fakes.telegram", "tests.fakes.slack")
    if importlib.util.find_spec(m) is not None
]


def uid(prefix: str = "t") -> str:
    """A fresh id, so each test has its own conversation."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("omnigate")


@pytest.fixture(scope="session")
def redis_server(session_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(session_dir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def platform_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings that point the real platform clients at the fake platform servers."""
    env: dict[str, str] = {}
    for name in ("fake_telegram", "fake_slack"):
        try:
            fake = request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            continue
        env.update(fake.env)
    return env


def stack_env(redis_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "OMNIGATE_REDIS_URL": redis_url,
            "OMNIGATE_WEB_SECRET": WEB_SECRET,
            "OMNIGATE_REPLY_CLAIM_IDLE_MS": "1000",
            "OMNIGATE_LOG_LEVEL": "INFO",
            # Every test's browser and socket comes from 127.0.0.1: its own test sets the limit.
            "OMNIGATE_WEB_NEW_SESSIONS_PER_MIN": "100000",
            # Every test client is 127.0.0.1, and benchmarks fire hundreds of turns a minute
            # at one conversation: the inbound limits have their own tests.
            "OMNIGATE_RATE_ADDRESS": "1000000",
            "OMNIGATE_RATE_CONVERSATION": "1000000",
        }
    )
    env.pop("OMNIGATE_API_TOKEN", None)
    env.update(extra)
    if env.get("OMNIGATE_BRAIN", "").startswith("tests.support.script_brain"):
        # The scripted brain writes no words with an LLM: no generation service for it.
        env["OMNIGATE_LLM_MODEL"] = "off"
    return env


@pytest.fixture(scope="session")
def script_stack(
    redis_server: RedisServer, platform_env: dict[str, str], session_dir: Path
) -> Iterator[Stack]:
    """Gateway + two workers running the scripted test brain (Redis db 1)."""
    env = stack_env(
        redis_server.url(1),
        {
            **platform_env,
            "OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain",
            "OMNIGATE_GATEWAY_ID": "script-gw",
        },
    )
    stack = Stack(
        "script",
        env,
        session_dir,
        free_port(),
        ["--pool", "threads", "--concurrency", "4", "--hostname", "script-a@%h"],
    )
    stack.add_worker(["--pool", "prefork", "--concurrency", "2", "--hostname", "script-b@%h"])
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def shop_stack(
    redis_server: RedisServer, platform_env: dict[str, str], session_dir: Path
) -> Iterator[Stack]:
    """Gateway + one worker running the real shop brain with the real models (Redis db 0), with
    no agents' console, as in ``make demo`` (an empty variable counts as unset)."""
    env = stack_env(
        redis_server.url(0),
        {**platform_env, "OMNIGATE_GATEWAY_ID": "shop-gw", "OMNIGATE_AGENT_CHANNEL": ""},
    )
    stack = Stack(
        "shop",
        env,
        session_dir,
        free_port(),
        ["--pool", "prefork", "--concurrency", "1", "--hostname", "shop@%h"],
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def agents_stack(redis_server: RedisServer, session_dir: Path) -> Iterator[Stack]:
    """Gateway + one worker with the scripted brain and the web agents' console as the only
    agents' console (no Slack; Redis db 8)."""
    env = stack_env(
        redis_server.url(8),
        {
            "OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain",
            "OMNIGATE_GATEWAY_ID": "agents-gw",
            "OMNIGATE_AGENT_CHANNEL": "",
            "OMNIGATE_AGENT_WEB_CONSOLE": "1",
        },
    )
    stack = Stack(
        "agents",
        env,
        session_dir,
        free_port(),
        ["--pool", "threads", "--concurrency", "2", "--hostname", "agents@%h"],
    )
    stack.start()
    yield stack
    stack.stop()


def add_agent(stack: Stack, name: str, password: str) -> str:
    """``omnigate agent add NAME --password-stdin`` against ``stack``'s Redis; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "agent", "add", name, "--password-stdin"],
        input=password + "\n",
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


async def chat(
    http: aiohttp.ClientSession, stack: Stack, user: str, text: str, **extra: Any
) -> list[dict[str, Any]]:
    """One turn through ``POST /api/chat``; returns the replies (fails on a non-200)."""
    async with http.post(f"{stack.url}/api/chat", json={"user": user, "text": text, **extra}) as r:
        body = await r.json()
        assert r.status == 200, body
        return list(body["replies"])
