"""The web chat protocol (``POST /web/session``, ``GET /web/ws``) against a real gateway and real
workers running the scripted brain: tokens, frames, replay, isolation, dedupe, replicas."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels.web import tokens as web_tokens
from channels.web.sequence import Delivered
from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import WEB_SECRET, uid
from tests.support.servers import RedisServer, Stack

WsConn = aiohttp.ClientWebSocketResponse


async def new_session(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any] | None = None
) -> dict[str, str]:
    async with http.post(f"{url}/web/session", json=body) as resp:
        data = await resp.json()
        assert resp.status == 200, data
        return dict(data)


async def open_ws(http: aiohttp.ClientSession, url: str, token: str) -> WsConn:
    """A visitor socket, the token in its first frame (never in the URL)."""
    ws_url = url.replace("http://", "ws://") + "/web/ws"
    ws = await http.ws_connect(ws_url, heartbeat=None)
    await ws.send_json({"type": "auth", "token": token})
    return ws


async def frame(ws: WsConn, timeout: float = 30, skip_typing: bool = True) -> dict[str, Any]:
    """The next server frame (typing frames skipped unless asked for)."""
    while True:
        msg = await ws.receive(timeout=timeout)
        assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        data: dict[str, Any] = json.loads(msg.data)
        if skip_typing and data["type"] == "typing":
            continue
        return data


async def replies(ws: WsConn, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    got = []
    while len(got) < n:
        f = await frame(ws, timeout)
        assert f["type"] == "reply", f
        got.append(f)
    return got


async def quiet(ws: WsConn, for_s: float = 1.0) -> list[dict[str, Any]]:
    """Every non-typing frame that arrives within ``for_s`` seconds."""
    out = []
    deadline = time.monotonic() + for_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            f = await frame(ws, timeout=left)
        except TimeoutError:
            break
        out.append(f)
    return out


def message(text: str, mid: str | None = None, **extra: str) -> dict[str, Any]:
    return {"type": "message", "id": mid or uid("m"), "text": text, **extra}


@pytest.fixture
async def visitor(
    http: aiohttp.ClientSession, script_stack: Stack
) -> AsyncIterator[tuple[dict[str, str], WsConn]]:
    s = await new_session(http, script_stack.url)
    ws = await open_ws(http, script_stack.url, s["token"])
    yield s, ws
    await ws.close()


# --- tokens -----------------------------------------------------------------------------------


def test_a_token_verifies_and_names_its_session() -> None:
    sid = web_tokens.new_session_id()
    token = web_tokens.issue("k", sid, 60)
    assert web_tokens.verify("k", token).session_id == sid


@pytest.mark.parametrize(
    ("token", "says"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1.abc", "malformed"),
        ("v2." + "a" * 32 + ".9999999999.sig", "malformed"),
        (web_tokens.issue("other-secret", "a" * 32, 60), "signature"),
        (web_tokens.sign("k", "a" * 32, int(time.time()) - 5), "expired"),
    ],
)
def test_bad_tokens_are_refused(token: str | None, says: str) -> None:
    with pytest.raises(web_tokens.BadToken, match=says):
        web_tokens.verify("k", token)


def test_a_token_cannot_be_moved_to_another_session() -> None:
    token = web_tokens.issue("k", "a" * 32, 60)
    _, _, exp, mac = token.split(".")
    with pytest.raises(web_tokens.BadToken, match="signature"):
        web_tokens.verify("k", f"v1.{'b' * 32}.{exp}.{mac}")
    with pytest.raises(web_tokens.BadToken, match="signature"):
        web_tokens.verify("k", f"v1.{'a' * 32}.{int(exp) + 1000}.{mac}")


def test_delivered_tracks_out_of_order_and_late_replies() -> None:
    has = Delivered(4)
    assert has(4) and not has(5) and has.next == 5
    has.add(6)  # 6 before 5
    assert has(6) and not has(5) and has.next == 5
    has.add(5)
    assert has.floor == 6 and has.above == set()
    has.skip_to(9)  # gave up waiting for 7 and 8 ...
    assert has.next == 9 and not has(7) and not has(8)
    has.add(9)
    has.add(7)  # ... and 7 still goes out when it comes, once
    assert has(7) and not has(8) and has.floor == 9
    has.resumed(2, [3, 4, 5])
    assert has.floor == 5 and not has(6)
    has.resumed(0, [300, 301])  # a trimmed log: nothing below 300 will come
    assert has.floor == 301


# --- sessions -----------------------------------------------------------------------------------


async def test_a_session_is_a_signed_token(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    s = await new_session(http, script_stack.url)
    assert web_tokens.verify(WEB_SECRET, s["token"]).session_id == s["session_id"]
    # An empty body works as well as {}.
    async with http.post(f"{script_stack.url}/web/session") as resp:
        assert resp.status == 200
        assert (await resp.json())["session_id"] != s["session_id"]


async def test_a_valid_token_continues_its_session_and_a_bad_one_starts_anew(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    s = await new_session(http, script_stack.url)
    again = await new_session(http, script_stack.url, {"token": s["token"]})
    assert again["session_id"] == s["session_id"]
    expired = web_tokens.sign(WEB_SECRET, s["session_id"], int(time.time()) - 1)
    forged = web_tokens.issue("not-the-secret", s["session_id"], 3600)
    for old in (expired, forged, "garbage"):
        fresh = await new_session(http, script_stack.url, {"token": old})
        assert fresh["session_id"] != s["session_id"]


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"{nope", "not valid JSON"), (b"[1]", "JSON object"), (b'{"token": 5}', "'token'")],
)
async def test_a_bad_session_body_is_a_400(
    http: aiohttp.ClientSession, script_stack: Stack, body: bytes, says: str
) -> None:
    async with http.post(f"{script_stack.url}/web/session", data=body) as resp:
        assert resp.status == 400
        assert says in (await resp.json())["error"]
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


# --- the socket: who gets in ------------------------------------------------------------------


def _tokens() -> dict[str, str | None]:
    sid = web_tokens.new_session_id()
    good = web_tokens.issue(WEB_SECRET, sid, 3600)
    return {
        "missing": None,
        "forged": web_tokens.issue("not-the-secret", sid, 3600),
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "expired": web_tokens.sign(WEB_SECRET, sid, int(time.time()) - 10),
        "malformed": "hello",
    }


@pytest.mark.parametrize("kind", ["missing", "forged", "tampered", "expired", "malformed"])
async def test_the_socket_refuses_a_bad_token_before_the_upgrade(
    http: aiohttp.ClientSession, script_stack: Stack, kind: str
) -> None:
    # The URL form of DESIGN.md, still accepted: checked before the upgrade.
    params = {"token": _tokens()[kind] or ""}
    ws_url = script_stack.url.replace("http://", "ws://") + "/web/ws"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(ws_url, params=params)
    assert info.value.status == 401
    async with http.get(f"{script_stack.url}/web/ws", params=params) as resp:
        assert resp.status == 401
        error = (await resp.json())["error"]
    assert ("expired" in error) if kind == "expired" else ("expired" not in error)


@pytest.mark.parametrize("kind", ["missing", "forged", "tampered", "expired", "malformed"])
async def test_a_bad_token_in_the_first_frame_is_told_and_the_socket_closed(
    http: aiohttp.ClientSession, script_stack: Stack, kind: str
) -> None:
    ws = await open_ws(http, script_stack.url, _tokens()[kind])  # type: ignore[arg-type]
    refused = await frame(ws)
    assert refused["type"] == "error"
    assert ("expired" in refused["error"]) if kind == "expired" else True
    closing = await ws.receive(timeout=30)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 4003
    await ws.close()


async def test_a_first_frame_that_is_not_auth_is_refused(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    ws_url = script_stack.url.replace("http://", "ws://") + "/web/ws"
    async with http.ws_connect(ws_url, heartbeat=None) as ws:
        await ws.send_json(message("echo: no token"))
        refused = await frame(ws)
        assert refused["type"] == "error" and "auth" in refused["error"]
        await ws.receive(timeout=30)
        assert ws.close_code == 4003


async def test_the_url_token_form_still_works(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    s = await new_session(http, script_stack.url)
    ws_url = script_stack.url.replace("http://", "ws://") + "/web/ws"
    async with http.ws_connect(ws_url, params={"token": s["token"]}, heartbeat=None) as ws:
        await ws.send_json(message("echo: old client"))
        [got] = await replies(ws, 1)
        assert got["reply"]["text"] == "echo: old client"


# --- the socket: frames -----------------------------------------------------------------------


async def test_a_message_gets_a_reply_frame_with_its_seq(
    visitor: tuple[dict[str, str], WsConn],
) -> None:
    _, ws = visitor
    await ws.send_json(message("echo: hello"))
    first = await frame(ws)
    assert first == {
        "type": "reply",
        "seq": first["seq"],
        "reply": {"text": "echo: hello", "buttons": [], "products": [], "handoff": False},
    }
    await ws.send_json(message("two"))
    a, b = await replies(ws, 2)
    assert [a["reply"]["text"], b["reply"]["text"]] == ["first", "second"]
    assert [a["seq"], b["seq"]] == [first["seq"] + 1, first["seq"] + 2]


async def test_a_button_click_carries_its_payload(visitor: tuple[dict[str, str], WsConn]) -> None:
    _, ws = visitor
    await ws.send_json(message("buttons"))
    (f,) = await replies(ws, 1)
    assert [b["payload"] for b in f["reply"]["buttons"]] == ["pay:yes", "pay:no"]
    await ws.send_json(message("Yes", payload="pay:yes"))
    (f,) = await replies(ws, 1)
    assert f["reply"]["text"] == "clicked: pay:yes"


async def test_a_long_turn_shows_typing_first(visitor: tuple[dict[str, str], WsConn]) -> None:
    _, ws = visitor
    await ws.send_json(message("sleep: 1.5 done"))
    assert (await frame(ws, skip_typing=False)) == {"type": "typing"}
    (f,) = await replies(ws, 1)
    assert f["reply"]["text"] == "done"


async def test_bad_frames_get_an_error_and_lose_nothing(
    visitor: tuple[dict[str, str], WsConn],
) -> None:
    _, ws = visitor
    bad: list[tuple[str | bytes, str]] = [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"id": "x", "text": "hi"}', "'type' is required"),
        ('{"type": "shout", "text": "hi"}', "unknown frame type 'shout'"),
        ('{"type": "message", "id": "x"}', "'text' is required"),
        ('{"type": "message", "text": "hi"}', "'id' is required"),
        ('{"type": "message", "id": "x", "text": "  "}', "'text' is empty"),
        ('{"type": "message", "id": "x", "text": "hi", "payload": 1}', "'payload'"),
        (json.dumps(message("x" * 4001)), "longer than 4000 characters"),
        ('{"type": "resume"}', "'after' is required"),
        ('{"type": "resume", "after": -1}', "'after' is required"),
        (b"\x00binary", "not binary"),
    ]
    for raw, says in bad:
        if isinstance(raw, bytes):
            await ws.send_bytes(raw)
        else:
            await ws.send_str(raw)
        f = await frame(ws)
        assert f["type"] == "error" and says in f["error"], (raw, f)
    await ws.send_json(message("echo: still here"))
    (f,) = await replies(ws, 1)
    assert f["reply"]["text"] == "echo: still here"


async def test_an_oversized_frame_closes_the_socket_and_the_session_goes_on(
    http: aiohttp.ClientSession, script_stack: Stack, visitor: tuple[dict[str, str], WsConn]
) -> None:
    s, ws = visitor
    await ws.send_json(message("echo: before"))
    (before,) = await replies(ws, 1)
    await ws.send_str(json.dumps(message("y" * (70 * 1024))))
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    ws2 = await open_ws(http, script_stack.url, s["token"])
    await ws2.send_json({"type": "resume", "after": before["seq"]})
    await ws2.send_json(message("echo: after"))
    (f,) = await replies(ws2, 1)
    assert (f["seq"], f["reply"]["text"]) == (before["seq"] + 1, "echo: after")
    await ws2.close()


async def test_the_same_client_id_twice_gives_one_reply(
    visitor: tuple[dict[str, str], WsConn],
) -> None:
    _, ws = visitor
    m = message("sleep: 0.3 once", mid="same-id")
    await ws.send_json(m)
    await ws.send_json(m)
    await ws.send_json(message("echo: next"))
    got = await replies(ws, 2)
    assert [f["reply"]["text"] for f in got] == ["once", "echo: next"]
    assert await quiet(ws, 1.0) == []


# --- resume -----------------------------------------------------------------------------------


async def test_resume_replays_what_was_missed_then_goes_on_live(
    http: aiohttp.ClientSession, script_stack: Stack, visitor: tuple[dict[str, str], WsConn]
) -> None:
    s, ws = visitor
    await ws.send_json(message("echo: one"))
    (one,) = await replies(ws, 1)
    await ws.send_json(message("sleep: 1 while away"))
    await ws.send_json(message("two"))
    await ws.close()  # the visitor drops off before the replies come
    await asyncio.sleep(2.5)

    ws2 = await open_ws(http, script_stack.url, s["token"])
    await ws2.send_json({"type": "resume", "after": one["seq"]})
    missed = await replies(ws2, 3)
    assert [f["reply"]["text"] for f in missed] == ["while away", "first", "second"]
    assert [f["seq"] for f in missed] == [one["seq"] + 1, one["seq"] + 2, one["seq"] + 3]
    await ws2.send_json(message("echo: live again"))
    (live,) = await replies(ws2, 1)
    assert (live["seq"], live["reply"]["text"]) == (one["seq"] + 4, "echo: live again")

    # A reload: resume after 0 shows the whole conversation, once each, in order.
    ws3 = await open_ws(http, script_stack.url, s["token"])
    await ws3.send_json({"type": "resume", "after": 0})
    everything = await replies(ws3, 5)
    assert [f["seq"] for f in everything] == list(range(one["seq"], one["seq"] + 5))
    assert await quiet(ws3, 0.5) == []
    await ws2.close()
    await ws3.close()


async def test_a_resume_while_replies_flow_sees_each_once_in_order(
    http: aiohttp.ClientSession, script_stack: Stack, visitor: tuple[dict[str, str], WsConn]
) -> None:
    s, ws = visitor
    for i in range(6):
        await ws.send_json(message(f"echo: {i}"))
    await replies(ws, 1)  # some replies are logged, the rest are on their way
    late = await open_ws(http, script_stack.url, s["token"])
    await late.send_json({"type": "resume", "after": 0})
    got = await replies(late, 6)
    got += await quiet(late, 1.0)
    assert [f["seq"] for f in got] == list(range(1, 7))
    assert [f["reply"]["text"] for f in got] == [f"echo: {i}" for i in range(6)]
    await late.close()


async def test_a_visitor_reads_only_their_own_conversation(
    http: aiohttp.ClientSession, script_stack: Stack, visitor: tuple[dict[str, str], WsConn]
) -> None:
    alice, ws_a = visitor
    await ws_a.send_json(message("echo: alice's secret"))
    await replies(ws_a, 1)

    bob = await new_session(http, script_stack.url)
    ws_b = await open_ws(http, script_stack.url, bob["token"])
    # Naming Alice's conversation in the frame changes nothing: the token decides.
    await ws_b.send_json({"type": "resume", "after": 0, "conversation": alice["session_id"]})
    await ws_b.send_json(message("echo: bob"))
    got = await replies(ws_b, 1)
    got += await quiet(ws_b, 1.0)
    assert [f["reply"]["text"] for f in got] == ["echo: bob"]
    assert got[0]["seq"] == 1
    # Alice's socket saw nothing of Bob.
    assert await quiet(ws_a, 0.5) == []
    await ws_b.close()


# --- replicas ---------------------------------------------------------------------------------


@pytest.fixture
async def replica(redis_server: RedisServer, script_stack: Stack) -> AsyncIterator[str]:
    """A second gateway replica (in this process) on the script stack's Redis."""
    settings = load_settings(
        OMNIGATE_REDIS_URL=script_stack.redis_url,
        OMNIGATE_WEB_SECRET=WEB_SECRET,
        OMNIGATE_GATEWAY_ID="web-replica-b",
        OMNIGATE_REPLY_CLAIM_IDLE_MS=1000,
    )
    server = TestServer(create_app(settings))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_replies_reach_the_visitor_on_any_replica(
    http: aiohttp.ClientSession, script_stack: Stack, replica: str
) -> None:
    s = await new_session(http, script_stack.url)
    on_a = await open_ws(http, script_stack.url, s["token"])
    on_b = await open_ws(http, replica, s["token"])  # same visitor, another replica
    for i in range(3):
        await on_a.send_json(message(f"echo: a{i}"))
        await on_b.send_json(message(f"echo: b{i}"))
    got_a = await replies(on_a, 6)
    got_b = await replies(on_b, 6)
    assert [f["seq"] for f in got_a] == [f["seq"] for f in got_b] == list(range(1, 7))
    assert sorted(f["reply"]["text"] for f in got_a) == sorted(
        [f"echo: a{i}" for i in range(3)] + [f"echo: b{i}" for i in range(3)]
    )
    await on_a.close()
    await on_b.close()


# --- static files and configuration -------------------------------------------------------------


async def test_the_widget_and_the_demo_page_are_served(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    async with http.get(f"{script_stack.url}/web/widget.js") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/javascript")
        js = await resp.text()
    assert "document.currentScript" in js and "innerHTML" not in js.split("*/", 1)[1]
    async with http.get(f"{script_stack.url}/") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        assert 'src="/web/widget.js"' in await resp.text()
    async with http.options(f"{script_stack.url}/web/session") as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_without_a_web_secret_sessions_answer_503_and_pages_still_load(
    redis_server: RedisServer,
) -> None:
    settings = load_settings(
        OMNIGATE_REDIS_URL=redis_server.url(2),
        OMNIGATE_WEB_SECRET="",
        OMNIGATE_GATEWAY_ID="web-no-secret",
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        resp = await client.post("/web/session")
        assert resp.status == 503
        assert "OMNIGATE_WEB_SECRET is missing" in (await resp.json())["error"]
        resp = await client.get("/web/ws", params={"token": "x"})
        assert resp.status == 503
        assert (await client.get("/")).status == 200


async def test_the_demo_shop_product_pictures_are_served(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    from brain.config import DEMO_STORE
    from brain.store import load_store

    urls = {p.image_url for p in load_store(DEMO_STORE).products()}
    for url in sorted(urls):
        async with http.get(script_stack.url + url) as resp:
            assert resp.status == 200, url
            assert resp.content_type == "image/svg+xml"
