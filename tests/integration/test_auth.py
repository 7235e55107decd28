"""``OMNIGATE_API_TOKEN``: with a token set, ``/api/chat`` wants ``Authorization: Bearer``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import load_settings
from tests.support.servers import RedisServer


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
