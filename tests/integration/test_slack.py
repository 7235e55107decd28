"""The Slack channel end to end: signed Events API and interactivity requests into the real
gateway (slack-bolt), turns on real Celery workers (the scripted brain), replies out through
slack-sdk to the fake Slack Web API."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from channels import constants as K
from channels.base import ChannelHost
from channels.schema import Inbound
from channels.slack.adapter import SlackChannel
from channels.slack.private import MOVED_TO_DM
from gateway.mounts import slack_config
from gateway.settings import load_settings
from tests.fakes.slack import (
    APP_TOKEN,
    BOT_USER,
    TOKEN,
    FakeSlack,
    block_actions,
    dm_event,
    event_callback,
    form_body,
    mention_event,
    next_id,
    sign,
)
from tests.support.servers import RedisServer, Stack, until


async def post(
    http: aiohttp.ClientSession,
    stack: Stack,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[int, str]:
    hdrs = {"Content-Type": content_type, **(sign(body) if headers is None else headers)}
    async with http.post(f"{stack.url}/slack/events", data=body, headers=hdrs) as r:
        return r.status, await r.text()


async def send_event(
    http: aiohttp.ClientSession,
    stack: Stack,
    event: dict[str, Any],
    event_id: str | None = None,
    retry: int | None = None,
) -> int:
    body = json.dumps(event_callback(event, event_id)).encode()
    headers = sign(body)
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    status, _ = await post(http, stack, body, headers)
    return status


async def test_forged_and_stale_requests_are_refused(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    body = json.dumps(event_callback(dm_event(dm, "U1", "echo: ghost"))).encode()
    forged = sign(body, secret="not-the-secret")
    stale = sign(body, timestamp=int(time.time()) - 6 * 60)
    for headers in (forged, stale, {}, {**sign(body), "X-Slack-Signature": "v0=00"}):
        status, text = await post(http, script_stack, body, headers)
        assert status == 401, text
    # A good request after them is answered, and nothing of the forged ones was.
    assert await send_event(http, script_stack, dm_event(dm, "U1", "echo: real")) == 200
    await fake_slack.wait_for(dm)
    assert [c.text for c in fake_slack.posts(dm)] == ["echo: real"]


async def test_url_verification_answers_the_challenge(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    body = json.dumps({"token": "t", "challenge": "chal-123", "type": "url_verification"})
    status, text = await post(http, script_stack, body.encode())
    assert status == 200 and json.loads(text) == {"challenge": "chal-123"}


async def test_a_dm_round_trip(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    # Slack escapes & < > in event text; the brain gets them back as typed.
    said = dm_event(dm, "U1", "echo: hi **you** &amp; &lt;me&gt;")
    assert await send_event(http, script_stack, said) == 200
    [call] = await fake_slack.wait_for(dm)
    assert call.text == "echo: hi *you* &amp; &lt;me&gt;"
    assert call.thread_ts is None and call.token == "xoxb-test"
    assert call.blocks[0]["text"] == {"type": "mrkdwn", "text": call.text}


async def test_a_retried_event_gets_one_reply(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    event, event_id = dm_event(dm, "U1", "echo: once"), next_id("Ev")
    assert await send_event(http, script_stack, event, event_id) == 200
    assert await send_event(http, script_stack, event, event_id, retry=1) == 200
    assert await send_event(http, script_stack, event, event_id, retry=2) == 200
    # Turns of a conversation are answered in order: once the next message is answered, a
    # second answer to the first would have come already.
    assert await send_event(http, script_stack, dm_event(dm, "U1", "echo: next")) == 200
    await fake_slack.wait_for(dm, 2)
    assert [c.text for c in fake_slack.posts(dm)] == ["echo: once", "echo: next"]


async def test_bots_edits_and_our_own_messages_are_ignored(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    ignored = [
        dm_event(dm, BOT_USER, "echo: mine"),
        dm_event(dm, "U2", "echo: a bot", bot_id="B9"),
        dm_event(dm, "U1", "echo: edited", subtype="message_changed"),
        dm_event(dm, "U1", "echo: joined", subtype="channel_join"),
    ]
    for event in ignored:
        assert await send_event(http, script_stack, event) == 200
    assert await send_event(http, script_stack, dm_event(dm, "U1", "echo: person")) == 200
    await fake_slack.wait_for(dm)
    assert [c.text for c in fake_slack.posts(dm)] == ["echo: person"]


async def test_a_mention_in_a_channel_is_answered_in_a_direct_message(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    channel, user = next_id("C"), next_id("U")
    mention = mention_event(channel, user, "echo: in channel")
    assert await send_event(http, script_stack, mention) == 200
    # The same message also arrives as a plain channel message: not answered twice.
    plain = {**mention, "type": "message", "channel_type": "channel"}
    assert await send_event(http, script_stack, plain) == 200
    [answer] = await fake_slack.wait_for(f"D{user}")
    assert answer.text == "echo: in channel" and answer.thread_ts is None
    # The thread, which the whole channel reads, only hears where the answer went.
    [note] = await fake_slack.wait_for(channel)
    assert note.text == MOVED_TO_DM and note.thread_ts == mention["ts"]


async def test_people_in_one_channel_thread_have_separate_private_conversations(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    # As in the review: A proves an email in a thread, B asks in the same thread.
    channel, a, b = next_id("C"), next_id("U"), next_id("U")
    first = mention_event(channel, a, "echo: order OG-12345, ada@example.com")
    assert await send_event(http, script_stack, first) == 200
    await fake_slack.wait_for(f"D{a}")
    later = mention_event(channel, b, "echo: where is my order?", thread_ts=first["ts"])
    assert await send_event(http, script_stack, later) == 200
    [to_b] = await fake_slack.wait_for(f"D{b}")
    assert to_b.text == "echo: where is my order?"
    # B's conversation is B's own: A's messages and memory are not in it.
    r = aioredis.Redis.from_url(script_stack.redis_url)
    session_b = json.loads(await r.get(f"{K.SESSION}slack:D{b}") or b"{}")
    assert [h["text"] for h in session_b["history"] if h["role"] == "user"] == [
        "echo: where is my order?"
    ]
    await r.aclose()
    # Nothing either of them said or was told is in the channel.
    notes = await fake_slack.wait_for(channel, 2)
    assert {c.text for c in notes} == {MOVED_TO_DM}


async def test_a_button_click_comes_back_as_a_payload(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    assert await send_event(http, script_stack, dm_event(dm, "U1", "buttons")) == 200
    [call] = await fake_slack.wait_for(dm)
    actions = call.blocks[-1]
    assert actions["type"] == "actions"
    assert [e["value"] for e in actions["elements"]] == ["pay:yes", "pay:no"]
    message = {"type": "message", "ts": call.ts, "text": call.text, "blocks": call.blocks}
    click = block_actions(dm, "U1", "pay:yes", actions["elements"][0]["action_id"], message)
    body = form_body(click)
    status, _ = await post(
        http, script_stack, body, content_type="application/x-www-form-urlencoded"
    )
    assert status == 200
    calls = await fake_slack.wait_for(dm, 2)
    assert calls[1].text == "clicked: pay:yes"


async def test_products_are_block_kit_cards(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    assert await send_event(http, script_stack, dm_event(dm, "U1", "products")) == 200
    [call] = await fake_slack.wait_for(dm)
    text, first, second = call.blocks
    assert text["text"]["text"] == "Here you go"
    assert first["accessory"]["type"] == "image"
    assert first["accessory"]["image_url"] == "https://shop.example/1.jpg"
    assert "<https://shop.example/p/1|Trail Runner 2>" in first["text"]["text"]
    assert "89.50 EUR" in first["text"]["text"]
    assert "accessory" not in second


async def test_a_long_reply_is_split_within_block_kit_limits(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    assert await send_event(http, script_stack, dm_event(dm, "U1", "long: 9000")) == 200
    [call] = await fake_slack.wait_for(dm)
    sections = [b["text"]["text"] for b in call.blocks]
    assert len(sections) >= 3 and all(len(s) <= 3000 for s in sections)
    assert sum(len(s) for s in sections) >= 9000 - 10


async def test_a_429_delays_the_reply_but_never_drops_or_doubles_it(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    # The first answer is retried by slack-sdk after Retry-After; the second 429 survives it
    # and becomes RetryLater in the delivery loop.
    fake_slack.fail_next(2, "chat.postMessage", retry_after=1)
    assert await send_event(http, script_stack, dm_event(dm, "U1", "echo: patient")) == 200
    [call] = await fake_slack.wait_for(dm, timeout=20)
    assert call.text == "echo: patient"
    tried = fake_slack.posts(dm, ok_only=False)
    assert [c.answered for c in tried] == ["429", "429", "ok"]
    assert tried[2].at - tried[0].at >= 1.0


class RecordingIngress:
    """Stands in for the gateway's ingress: keeps what it is given."""

    def __init__(self) -> None:
        self.got: list[Inbound] = []

    async def submit(self, inbound: Inbound, address: str | None = None) -> bool:
        self.got.append(inbound)
        return True


async def test_socket_mode_takes_events_without_a_public_url(
    redis_server: RedisServer, fake_slack: FakeSlack
) -> None:
    settings = load_settings(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_SIGNING_SECRET="",
        SLACK_API_URL=fake_slack.url + "/api/",
        OMNIGATE_REDIS_URL=redis_server.url(5),
    )
    r = aioredis.Redis.from_url(settings.redis_url)
    ingress = RecordingIngress()
    host = ChannelHost(redis=r, ingress=ingress, live=None)  # type: ignore[arg-type]
    config = slack_config(settings)
    assert config is not None
    channel = SlackChannel(host, config)
    channel.start()
    try:
        dm = next_id("D")
        envelope_id = next_id("env-")
        fake_slack.push_envelope(
            {
                "envelope_id": envelope_id,
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": event_callback(dm_event(dm, "U1", "over the socket")),
            }
        )
        await until(lambda: bool(ingress.got), 15, "the socket-mode event at ingress")
        [inbound] = ingress.got
        assert (inbound.conversation, inbound.text) == (dm, "over the socket")
        await until(
            lambda: any(a.get("envelope_id") == envelope_id for a in fake_slack.socket_acks),
            5,
            "the envelope's ack",
        )
    finally:
        await channel.close()
        await r.aclose()
