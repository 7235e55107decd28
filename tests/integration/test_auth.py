"""``OMNIGATE_API_TOKEN``: with a token set, ``/api/chat`` wants ``Authorization: Bearer``, and
``/admin`` the token as Basic credentials or an agent signed in to the agents' console."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.accounts import add_account
from gateway.app import create_app
from gateway.redis_clients import async_client
from gateway.settings import load_settings
from tests.conftest import uid
from tests.support.servers import ROOT, RedisServer

PASSWORD = "correct horse battery"


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[TestClient]:
    # Its own database: this in-process gateway must not join another stack's reply group.
    settings = load_settings(
        OMNIGATE_REDIS_URL=redis_server.url(2),
        OMNIGATE_API_TOKEN="s3cret",
        OMNIGATE_GATEWAY_ID="auth-test",
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


@pytest.mark.parametrize("header", [None, "Bearer wrong", "s3cret", "Basic s3cret"])
async def test_a_missing_or_wrong_token_is_refused(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = await client.post("/api/chat", json={"user": "u", "text": "hi"}, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "missing or wrong bearer token"


async def test_the_right_token_is_let_through(client: TestClient) -> None:
    # An invalid body past the token check proves the request was let in.
    resp = await client.post(
        "/api/chat", json={"text": "hi"}, headers={"Authorization": "Bearer s3cret"}
    )
    assert resp.status == 400


def test_a_gateway_on_every_address_without_a_token_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMNIGATE_API_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "gateway", "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "OMNIGATE_API_TOKEN is missing" in done.stderr


async def test_a_signed_in_agent_sees_the_admin_page(
    client: TestClient, redis_server: RedisServer
) -> None:
    assert (await client.get("/admin")).status == 401
    name = uid("agent")
    r = async_client(redis_server.url(2))
    await add_account(r, name, PASSWORD)
    await r.aclose()
    # Signed in at /agent/login, as in the agents' console: the session cookie is enough.
    resp = await client.post("/agent/login", data={"name": name, "password": PASSWORD})
    page = await resp.text()
    assert resp.status == 200 and resp.url.path == "/agent", page
    resp = await client.get("/admin?since=1d")
    assert resp.status == 200
    assert "The shop's numbers" in await resp.text()

    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    await client.post("/agent/logout", data={"csrf": match.group(1)})
    assert (await client.get("/admin")).status == 401
