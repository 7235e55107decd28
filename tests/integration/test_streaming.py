"""Streamed replies on every channel, against the real gateway, real Celery workers and the real
delivery loop; Telegram and Slack through python-telegram-bot and slack-sdk to the fake
platform servers. The scripted brain's ``stream:`` command is the model (the one test double):
its words go through the brain's real grounding gate, clause by clause, to the turn's
delta sink and the reply stream.

What must hold: checked clauses show while the reply is generated (delta frames; a message
that grows by edits), the final reply carries the whole checked text and replaces the preview
(one message on Telegram and Slack, not two), a clause that fails grounding never reaches
the customer and the grounded text replaces the reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import redis

from channels import constants as K
from channels.schema import Inbound, User
from tests.conftest import uid
from tests.fakes.slack import FakeSlack, dm_event
from tests.fakes.slack import next_id as slack_id
from tests.fakes.telegram import FakeTelegram, next_id
from tests.integration.test_faults import _short_stack
from tests.integration.test_slack import send_event
from tests.integration.test_telegram import say as telegram_say
from tests.integration.test_web_protocol import frame, new_session, open_ws
from tests.support.script_brain import STREAM_GROUNDED
from tests.support.servers import RedisServer, Stack, until
from workers.outgoing import delta_fields

CHECKED = "Good news! Order OG-10231 has shipped with DHL. It is on its way to you. Enjoy it."
INVENTED = "1Z999AA10123456784"
INVENTS = (
    f"Good news: order OG-10231 has shipped. Your tracking number is {INVENTED}. "
    "It arrives tomorrow."
)


async def web_turn(http: aiohttp.ClientSession, stack: Stack, text: str) -> list[dict[str, Any]]:
    """Frames of one widget turn, up to and including its reply frame (typing skipped)."""
    session = await new_session(http, stack.url)
    ws = await open_ws(http, stack.url, session["token"])
    try:
        await ws.send_json({"type": "message", "id": uid("m"), "text": text})
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] != "reply":
            frames.append(await frame(ws))
        return frames
    finally:
        await ws.close()


async def test_the_widget_gets_checked_deltas_then_the_whole_reply(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    frames = await web_turn(http, script_stack, f"stream: {CHECKED}")
    *deltas, final = frames
    assert [d["type"] for d in deltas] == ["delta"] * 4
    assert [d["text"] for d in deltas] == [
        "Good news!",
        " Order OG-10231 has shipped with DHL.",
        " It is on its way to you.",
        " Enjoy it.",
    ]
    assert "".join(d["text"] for d in deltas) == final["reply"]["text"] == CHECKED
    assert {d["reply_id"] for d in deltas} == {final["reply_id"]}


async def test_an_invented_tracking_number_never_reaches_the_widget(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    frames = await web_turn(http, script_stack, f"stream: {INVENTS}")
    *deltas, final = frames
    assert [d["text"] for d in deltas] == ["Good news: order OG-10231 has shipped."]
    assert final["reply"]["text"] == STREAM_GROUNDED  # the grounded text replaces the stream
    assert final["reply_id"] == deltas[0]["reply_id"]
    assert all(INVENTED not in json.dumps(f) for f in frames)


async def test_a_reply_that_does_not_stream_keeps_its_frame_as_it_was(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    [final] = await web_turn(http, script_stack, "echo: plain")
    assert final == {"type": "reply", "seq": final["seq"], "reply": final["reply"]}


async def test_telegram_grows_one_message_by_edits_and_ends_with_the_checked_reply(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await free_slots(script_stack, "telegram", "bot")  # previews take free slots only
    await telegram_say(http, script_stack, chat, f"stream: {CHECKED}")
    await until(
        lambda: fake_telegram.shown(chat) == [CHECKED], timeout=30, what="the checked reply"
    )
    sends = fake_telegram.calls_for(chat, "sendMessage")
    edits = fake_telegram.calls_for(chat, "editMessageText")
    # One message: the first checked clause sent it, later text edited it.
    assert [c.params["text"] for c in sends] == ["Good news!"]
    assert edits and edits[-1].params["text"] == CHECKED
    assert {int(c.params["message_id"]) for c in edits} == {_message_id(fake_telegram, chat)}


async def test_telegram_never_shows_an_invented_tracking_number(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await telegram_say(http, script_stack, chat, f"stream: {INVENTS}")
    await until(
        lambda: fake_telegram.shown(chat) == [STREAM_GROUNDED], timeout=30, what="the grounded text"
    )
    calls = fake_telegram.calls_for(chat, None, ok_only=False)
    assert all(INVENTED not in json.dumps(c.params) for c in calls)
    assert len(fake_telegram.calls_for(chat, "sendMessage")) == 1


async def test_slack_grows_one_message_by_updates_and_ends_with_the_checked_reply(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = slack_id("D")
    await free_slots(script_stack, "slack", "chat.update")  # previews take free slots only
    assert await send_event(http, script_stack, dm_event(dm, "U1", f"stream: {CHECKED}")) == 200
    await until(lambda: fake_slack.shown(dm) == [CHECKED], timeout=30, what="the checked reply")
    [post] = fake_slack.posts(dm)
    assert post.block_texts == "Good news!"
    updates = [c for c in fake_slack.calls_of("chat.update") if c.channel == dm]
    assert updates and {c.params["ts"] for c in updates} == {post.ts}


async def test_slack_never_shows_an_invented_tracking_number(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = slack_id("D")
    assert await send_event(http, script_stack, dm_event(dm, "U1", f"stream: {INVENTS}")) == 200
    await until(
        lambda: fake_slack.shown(dm) == [STREAM_GROUNDED], timeout=30, what="the grounded text"
    )
    calls = [c for c in fake_slack.calls if c.channel == dm]
    assert all(INVENTED not in json.dumps(c.params) for c in calls)
    assert len(fake_slack.posts(dm)) == 1


async def test_a_late_preview_never_edits_the_final_reply(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await telegram_say(http, script_stack, chat, f"stream: {CHECKED}")
    await until(lambda: fake_telegram.shown(chat) == [CHECKED], timeout=30, what="the reply")
    r = redis.Redis.from_url(script_stack.redis_url)
    keys: Any = r.keys(f"{K.PREVIEW}telegram:{chat}:*")
    [key] = keys
    assert r.get(key) == f"final:{_message_id(fake_telegram, chat)}".encode()
    turn = key.decode().rsplit(":", 1)[1]  # the Inbound.id answered
    # A preview of that reply read only now (another replica, a slow stream read) ...
    inbound = Inbound(
        id=turn, channel="telegram", platform_id="x", user=User(id="u"), conversation=str(chat)
    )
    reply_id = f"{turn}-1"
    r.xadd(K.REPLY_STREAM, delta_fields(inbound, reply_id, " LATE.", "LATE."))  # type: ignore[arg-type]
    await telegram_say(http, script_stack, chat, "echo: after")  # delivered after the preview
    await until(lambda: len(fake_telegram.shown(chat)) == 2, timeout=30, what="the next reply")
    # ... changed nothing: the checked reply stands, and nothing else was sent.
    assert fake_telegram.shown(chat) == [CHECKED, "echo: after"]
    assert all("LATE" not in json.dumps(c.params) for c in fake_telegram.calls_for(chat, None))


@pytest.fixture(scope="module")
def crash_stack(
    redis_server: RedisServer,
    platform_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Gateway + prefork worker with short lock and sweep times, for a turn killed mid-stream."""
    stack = _short_stack(
        "streamcrash",
        redis_server.url(12),
        {**platform_env, "OMNIGATE_GATEWAY_ID": "streamcrash-gw"},
        "prefork",
        tmp_path_factory,
    )
    yield stack
    stack.stop()


async def test_a_turn_killed_mid_stream_is_answered_again_in_the_same_message(
    http: aiohttp.ClientSession, crash_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await free_slots(crash_stack, "telegram", "bot")
    await telegram_say(http, crash_stack, chat, f"streamcrash: {CHECKED}")
    # The first take streamed "Good news!" and died; the next take streams it all again.
    await until(
        lambda: fake_telegram.shown(chat) == [CHECKED], timeout=90, what="the checked reply"
    )
    assert [c.params["text"] for c in fake_telegram.calls_for(chat, "sendMessage")] == [
        "Good news!"
    ]
    # The first take did die (Celery's pool process logs its child's end when it reaps it,
    # which may come after the next take has answered).
    await until(
        lambda: "signal 9 (SIGKILL)" in crash_stack.worker.log(), timeout=30, what="the kill"
    )


async def free_slots(stack: Stack, platform: str, key: str) -> None:
    """Until the platform's shared send slot ``key`` is free (``gateway.ratelimit``): an
    earlier test's sends may hold it, and a preview is sent only into a free slot."""
    r = redis.Redis.from_url(stack.redis_url)

    def free() -> bool:
        taken: Any = r.get(f"{K.RATE}{platform}:{key}")
        return taken is None or int(taken) <= time.time() * 1000

    await until(free, timeout=30, what=f"a free {platform} {key} slot")


def _message_id(fake: FakeTelegram, chat: int) -> int:
    [(_, message_id)] = [k for k in fake.messages if k[0] == chat]
    return message_id
