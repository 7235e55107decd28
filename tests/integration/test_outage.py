"""A Redis outage: the gateway answers 503 with a clear error (so platforms retry), reports
itself unready, and works again when Redis is back — nothing it accepted is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from channels.errors import TRY_AGAIN
from tests.conftest import chat, stack_env, uid
from tests.support.servers import RedisServer, Stack, free_port, until


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, RedisServer]]:
    workdir: Path = tmp_path_factory.mktemp("outage")
    server = RedisServer(workdir / "redis", persistent=True)
    env = stack_env(server.url(0), {"OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain"})
    stack = Stack(
        "outage",
        env,
        workdir,
        free_port(),
        ["--pool", "threads", "--concurrency", "2", "--hostname", "outage@%h"],
    )
    stack.start()
    yield stack, server
    stack.stop()
    server.stop()


async def test_redis_down_gives_503_and_back_up_works_again(
    http: aiohttp.ClientSession, outage_stack: tuple[Stack, RedisServer]
) -> None:
    stack, server = outage_stack
    user = uid("u")
    assert (await chat(http, stack, user, "echo: before"))[0]["text"] == "echo: before"

    server.stop()
    async with http.post(f"{stack.url}/api/chat", json={"user": user, "text": "echo: x"}) as r:
        assert r.status == 503
        # A plain apology: not Redis's own error text, which names its host and port.
        assert (await r.json())["error"] == TRY_AGAIN
    async with http.get(f"{stack.url}/readyz") as r:
        assert r.status == 503

    server.start()
    await until(lambda: stack._get("/readyz") == 200, 30, "readiness after Redis came back")
    assert (await chat(http, stack, user, "echo: after"))[0]["text"] == "echo: after"
