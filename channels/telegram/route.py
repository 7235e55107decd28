"""The Telegram route: ``POST /telegram/webhook``, and mounting the channel.

Mounted by ``setup`` when the gateway has a Telegram config (``TELEGRAM_BOT_TOKEN`` set). Mode:
``webhook`` mounts the route (``omnigate telegram set-webhook URL`` registers it with
Telegram); ``polling`` runs PTB's updater; ``auto`` polls when there is no webhook secret.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from telegram import Update

from channels.base import ChannelHost
from channels.http import json_error, read_json, run_with_app
from channels.schema import ChannelName
from channels.telegram.adapter import UNREADABLE, TelegramChannel
from channels.telegram.config import TelegramConfig

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

TELEGRAM = web.AppKey("telegram", TelegramChannel)


def setup(app: web.Application, host: ChannelHost, config: TelegramConfig) -> None:
    """Mount the Telegram channel: its adapter, and the webhook route when there is a secret."""
    # httpx logs every request URL at INFO, and a Bot API URL holds the bot token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
    channel = TelegramChannel(host, config)
    host.adapters[ChannelName.telegram] = channel
    app[TELEGRAM] = channel
    if config.webhook_secret:
        app.router.add_post(WEBHOOK_PATH, webhook)
    run_with_app(app, channel)


async def webhook(request: web.Request) -> web.Response:
    """One update from Telegram. 403 without the secret; 200 once queued (or a duplicate, or
    ignored); 503 when it cannot be queued, so Telegram re-sends it.

    Bodies that are not JSON objects with an integer ``update_id`` are answered 400: Telegram
    never sends such a thing, so whoever did (a proxy, a test, a bug) should hear it. But a
    body that has an ``update_id`` and that PTB or our translation cannot read is answered 200
    and logged (and counted): it did come from Telegram, which re-sends a non-2xx update for
    hours and holds the bot's later updates back behind it, so refusing it would stall the
    bot for every customer without ever succeeding.
    """
    channel = request.app[TELEGRAM]
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), channel.secret.encode()):
        return json_error(403, f"missing or wrong {SECRET_HEADER}")
    body = await read_json(request)
    update_id = body.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return json_error(400, "not a Telegram update: no integer 'update_id'")
    try:
        update = Update.de_json(body, channel.bot)
    except Exception as exc:
        UNREADABLE.inc()
        log.error("unreadable Telegram update %s (%s)", update_id, exc)
        return web.json_response({"ok": True, "result": "ignored"})
    result = await channel.accept(update)
    return web.json_response({"ok": True, "result": result})
