"""The Telegram channel end to end: webhook updates into the real gateway, turns on real Celery
workers (the scripted brain), replies out through python-telegram-bot to the fake Bot API."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp
import pytest
import redis

from gateway.mounts import set_webhook
from gateway.settings import load_settings
from tests.fakes.telegram import (
    SECRET,
    FakeTelegram,
    callback_update,
    message_update,
    next_id,
    photo_update,
    sticker_update,
    text_update,
)
from tests.support.servers import Proc, Stack, free_port, wait_for

HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def post(
    http: aiohttp.ClientSession, stack: Stack, update: Any, secret: str | None = SECRET
) -> tuple[int, dict[str, Any]]:
    headers = {HEADER: secret} if secret is not None else {}
    data = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers["Content-Type"] = "application/json"
    async with http.post(f"{stack.url}/telegram/webhook", data=data, headers=headers) as r:
        return r.status, await r.json()


async def say(http: aiohttp.ClientSession, stack: Stack, chat: int, text: str) -> None:
    status, body = await post(http, stack, text_update(chat, text))
    assert (status, body) == (200, {"ok": True, "result": "queued"})


def texts(calls: list[Any]) -> list[str]:
    return [c.params["text"] for c in calls]


async def test_a_text_message_is_answered_in_its_chat(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await say(http, script_stack, chat, "echo: hi <there> & **you**")
    [call] = await fake_telegram.wait_for(chat)
    assert call.params["text"] == "echo: hi &lt;there&gt; &amp; <b>you</b>"
    assert call.params["parse_mode"] == "HTML"


async def test_the_webhook_refuses_a_missing_or_wrong_secret(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    for secret in (None, "wrong", SECRET + "x", ""):
        status, body = await post(http, script_stack, text_update(chat, "echo: ghost"), secret)
        assert status == 403 and HEADER in body["error"]
    await say(http, script_stack, chat, "echo: real")
    await fake_telegram.wait_for(chat)
    assert texts(fake_telegram.calls_for(chat)) == ["echo: real"]


async def test_the_same_update_twice_gets_one_reply(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    update = text_update(chat, "echo: once")
    assert await post(http, script_stack, update) == (200, {"ok": True, "result": "queued"})
    assert await post(http, script_stack, update) == (200, {"ok": True, "result": "duplicate"})
    # Turns of a chat run in order: once the next message is answered, a second answer to the
    # first would have come already.
    await say(http, script_stack, chat, "echo: after")
    await fake_telegram.wait_for(chat, 2)
    assert texts(fake_telegram.calls_for(chat)) == ["echo: once", "echo: after"]


async def test_buttons_are_an_inline_keyboard_and_a_press_is_the_next_message(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await say(http, script_stack, chat, "buttons")
    [call] = await fake_telegram.wait_for(chat)
    assert call.params["text"] == "Pick one"
    assert call.keyboard == [
        [{"text": "Yes", "callback_data": "pay:yes"}],
        [{"text": "No", "callback_data": "pay:no"}],
    ]

    press = callback_update(chat, "pay:yes")
    assert (await post(http, script_stack, press))[0] == 200
    calls = await fake_telegram.wait_for(chat, 2)
    assert calls[1].params["text"] == "clicked: pay:yes"
    query_id = press["callback_query"]["id"]
    await fake_telegram.wait_until(
        lambda: any(
            c.params.get("callback_query_id") == query_id
            for c in fake_telegram.calls_of("answerCallbackQuery")
        ),
        what="answerCallbackQuery",
    )


async def test_a_long_button_payload_is_kept_server_side(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await say(http, script_stack, chat, "longbutton")
    [call] = await fake_telegram.wait_for(chat)
    [[button]] = call.keyboard
    data = button["callback_data"]
    assert len(data.encode()) <= 64
    await post(http, script_stack, callback_update(chat, data))
    calls = await fake_telegram.wait_for(chat, 2)
    assert calls[1].params["text"] == "clicked: " + "L" * 200


async def test_an_expired_long_button_is_answered_and_starts_no_turn(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    press = callback_update(chat, "~no-such-key")
    assert await post(http, script_stack, press) == (200, {"ok": True, "result": "ignored"})
    query_id = press["callback_query"]["id"]
    answers = lambda: fake_telegram.calls_of("answerCallbackQuery")  # noqa: E731
    await fake_telegram.wait_until(
        lambda: any(
            c.params.get("callback_query_id") == query_id and "expired" in c.params.get("text", "")
            for c in answers()
        ),
        what="answerCallbackQuery",
    )
    await say(http, script_stack, chat, "echo: next")
    await fake_telegram.wait_for(chat)
    assert texts(fake_telegram.calls_for(chat)) == ["echo: next"]


async def test_a_long_reply_is_split_into_messages_of_4096(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await say(http, script_stack, chat, "long: 9000")
    calls = await fake_telegram.wait_for(chat, 3)
    parts = texts(calls)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "".join(parts) == ("word " * 1801)[:9000]


async def test_a_429_storm_delays_replies_but_never_drops_or_doubles_them(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chats = [next_id(), next_id()]
    before = len([c for c in fake_telegram.calls_of("sendMessage") if c.answered == "429"])
    fake_telegram.fail_next(5, "sendMessage", retry_after=1)
    for i in range(3):
        for chat in chats:
            await say(http, script_stack, chat, f"echo: {chat}-{i}")
    for chat in chats:
        await fake_telegram.wait_for(chat, 3, timeout=30)
    await asyncio.sleep(0.5)
    for chat in chats:
        assert texts(fake_telegram.calls_for(chat)) == [f"echo: {chat}-{i}" for i in range(3)]
    refused = [c for c in fake_telegram.calls_of("sendMessage") if c.answered == "429"]
    assert len(refused) - before == 5


async def test_a_chat_that_blocked_the_bot_is_not_retried(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    fake_telegram.blocked.add(chat)
    await say(http, script_stack, chat, "echo: refused")
    await fake_telegram.wait_until(
        lambda: fake_telegram.calls_for(chat, ok_only=False), what="the refused sendMessage"
    )
    fake_telegram.blocked.discard(chat)
    await say(http, script_stack, chat, "echo: unblocked")
    await fake_telegram.wait_for(chat)
    sent = fake_telegram.calls_for(chat, ok_only=False)
    assert [(c.answered, c.params["text"]) for c in sent] == [
        ("error", "echo: refused"),
        ("ok", "echo: unblocked"),
    ]


async def test_photos_and_stickers_become_attachments_of_a_turn(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    for update in (photo_update(chat, caption="echo: nice shoe?"), sticker_update(chat)):
        assert (await post(http, script_stack, update))[1]["result"] == "queued"
    calls = await fake_telegram.wait_for(chat, 2)
    assert texts(calls) == ["echo: nice shoe?", "you said: "]
    r = redis.Redis.from_url(script_stack.redis_url)
    session = json.loads(r.get(f"og:session:telegram:{chat}") or b"{}")
    said = [h["text"] for h in session["history"] if h["role"] == "user"]
    assert said == ["echo: nice shoe?", "[sticker]"]


async def test_products_are_photo_cards_with_a_view_button(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    chat = next_id()
    await say(http, script_stack, chat, "products: <Trail> & Runner")
    [photo] = await fake_telegram.wait_for(chat, method="sendPhoto")
    assert photo.params["photo"] == "https://shop.example/1.jpg"
    assert photo.params["caption"] == "<b>&lt;Trail&gt; &amp; Runner</b>\n89.50 EUR"
    assert photo.keyboard == [[{"text": "View", "url": "https://shop.example/p/1"}]]
    # The product without an image is a text card; the intro text comes first.
    messages = await fake_telegram.wait_for(chat, 2)
    assert texts(messages) == ["Here you go", "<b>Road Racer</b>\n120.00 EUR"]
    assert messages[1].keyboard == [[{"text": "View", "url": "https://shop.example/p/2"}]]
    assert messages[0].at < photo.at < messages[1].at


async def test_typing_is_shown_while_a_slow_turn_runs(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    # Telegram shows "typing" for 5 s; the worker repeats it every ~4 s of a turn.
    chat = next_id()
    await say(http, script_stack, chat, "sleep: 5.5 done")
    [reply] = await fake_telegram.wait_for(chat)
    actions = fake_telegram.calls_for(chat, "sendChatAction")
    assert len(actions) >= 2 and all(a.params["action"] == "typing" for a in actions)
    moments = [a.at for a in actions] + [reply.at]
    assert all(b - a < 5.0 for a, b in itertools.pairwise(moments))


@pytest.mark.parametrize(
    ("body", "status", "result"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"message": {"text": "hi"}}', 400, "update_id"),
        (b'{"update_id": "7"}', 400, "update_id"),
        # Has an update_id, so it is Telegram's: 200 and logged, never re-sent forever.
        (b'{"update_id": 7, "message": "garbage"}', 200, "ignored"),
        (
            b'{"update_id": 8, "edited_message": {"message_id": 1, "date": 0, '
            b'"chat": {"id": 1, "type": "private"}, "text": "edited"}}',
            200,
            "ignored",
        ),
        (
            b'{"update_id": 9, "channel_post": {"message_id": 1, "date": 0, '
            b'"chat": {"id": -5, "type": "channel"}, "text": "news"}}',
            200,
            "ignored",
        ),
    ],
)
async def test_bodies_that_are_not_updates_get_a_documented_answer(
    http: aiohttp.ClientSession, script_stack: Stack, body: bytes, status: int, result: str
) -> None:
    code, data = await post(http, script_stack, body)
    assert code == status
    assert result in str(data.get("error") or data.get("result"))


async def test_group_messages_are_ignored(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    group = -next_id()
    update = message_update(group, chat_type="group", text="echo: hello group")
    assert await post(http, script_stack, update) == (200, {"ok": True, "result": "ignored"})


async def test_set_webhook_registers_the_url_with_the_secret(
    script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    settings = load_settings(**fake_telegram.env)
    url = "https://shop.example/telegram/webhook"
    await asyncio.to_thread(set_webhook, settings, url)
    call = fake_telegram.calls_of("setWebhook")[-1]
    assert call.params["url"] == url
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]


async def test_polling_puts_updates_through_the_same_path(
    script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    # A second gateway replica of the same bot, polling instead of receiving the webhook.
    port = free_port()
    env = {**script_stack.env, "TELEGRAM_MODE": "polling", "OMNIGATE_GATEWAY_ID": "poll-gw"}
    proc = Proc(
        "telegram-polling-gateway", ["gateway", "--port", str(port)], env, script_stack.log_dir
    )
    polled = len(fake_telegram.calls_of("getUpdates"))
    proc.start()
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: len(fake_telegram.calls_of("getUpdates")) > polled or not proc.alive(),
            30,
            "the polling gateway's first getUpdates",
        )
        assert proc.alive(), proc.log()[-3000:]
        chat = next_id()
        fake_telegram.push_update(text_update(chat, "echo: polled"))
        fake_telegram.push_update(callback_update(chat, "pay:no"))
        calls = await fake_telegram.wait_for(chat, 2, timeout=20)
        assert texts(calls) == ["echo: polled", "clicked: pay:no"]
        assert fake_telegram.calls_of("deleteWebhook")
    finally:
        await asyncio.to_thread(proc.stop)
    assert "Traceback" not in proc.log(), proc.log()[-3000:]
