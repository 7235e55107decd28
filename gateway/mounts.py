"""Each channel's config, built from the one ``Settings``, and the mounting of every configured
channel on the gateway's app. A channel never reads ``Settings`` (it is below the gateway): it
gets its own config dataclass and a ``ChannelHost`` from here."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from aiohttp import web
from telegram.error import TelegramError

from brain.intents import known_intents
from channels.api import route as api_route
from channels.api.config import ApiConfig
from channels.base import ChannelHost
from channels.slack import route as slack_route
from channels.slack.config import SlackConfig
from channels.telegram import route as telegram_route
from channels.telegram.adapter import register_webhook
from channels.telegram.config import TelegramConfig
from channels.web import route as web_route
from channels.web.config import WebConfig
from gateway.settings import ConfigError, Settings

log = logging.getLogger(__name__)


def mount_channels(app: web.Application, host: ChannelHost, settings: Settings) -> None:
    """Mount ``/api/chat`` and the web chat, then Telegram and Slack when their settings are
    present."""
    api_route.setup(app, host, api_config(settings))
    web_route.setup(app, host, web_config(settings))
    telegram = telegram_config(settings)
    if telegram is not None:
        telegram_route.setup(app, host, telegram)
    slack = slack_config(settings)
    if slack is not None:
        slack_route.setup(app, host, slack)


def api_config(s: Settings) -> ApiConfig:
    """``POST /api/chat``'s settings."""
    return ApiConfig(
        api_token=s.api_token, chat_timeout_s=s.chat_timeout_s, max_text_chars=s.max_text_chars
    )


def web_config(s: Settings) -> WebConfig:
    """The web chat's settings; without ``OMNIGATE_WEB_SECRET`` it runs without a secret
    (sessions and sockets answer 503) and says so in the log."""
    try:
        secret: str | None = s.effective_web_secret
    except ConfigError as exc:
        log.warning("web chat is off: %s", exc)
        secret = None
    return WebConfig(
        secret=secret,
        log_ttl_s=max(s.session_ttl_s, s.web_token_ttl_s),
        token_ttl_s=s.web_token_ttl_s,
        session_max_age_s=s.web_session_max_age_s,
        new_sessions_per_min=s.web_new_sessions_per_min,
        max_body_bytes=s.max_body_bytes,
        max_text_chars=s.max_text_chars,
        origins=s.allowed_web_origins,
    )


def telegram_config(s: Settings) -> TelegramConfig | None:
    """The Telegram channel's settings; None without ``TELEGRAM_BOT_TOKEN``."""
    if not s.telegram_bot_token:
        return None
    polling = s.telegram_mode == "polling" or (
        s.telegram_mode == "auto" and not s.telegram_webhook_secret
    )
    if not polling and not s.telegram_webhook_secret:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET is missing, and has no default: the webhook "
            "route checks it on every update (or set TELEGRAM_MODE=polling)"
        )
    return TelegramConfig(
        bot_token=s.telegram_bot_token,
        api_url=s.telegram_api_url,
        webhook_secret=s.telegram_webhook_secret,
        polling=polling,
        max_text_chars=s.max_text_chars,
    )


def slack_config(s: Settings) -> SlackConfig | None:
    """The Slack channel's settings; None without ``SLACK_BOT_TOKEN``."""
    if not s.slack_bot_token:
        return None
    if not s.slack_signing_secret and not s.slack_app_token:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is missing, and has no default: /slack/events checks the "
            "signature of every request with it (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    return SlackConfig(
        bot_token=s.slack_bot_token,
        api_url=s.slack_api_url,
        signing_secret=s.slack_signing_secret,
        app_token=s.slack_app_token,
        agent_channel=s.agent_channel,
        max_text_chars=s.max_text_chars,
        session_ttl_s=s.session_ttl_s,
        intents=known_intents(),
    )


def set_webhook(settings: Settings, url: str) -> None:
    """Register ``url`` — the gateway's public ``https://…/telegram/webhook`` — as the bot's
    webhook, with ``TELEGRAM_WEBHOOK_SECRET`` as the secret token Telegram sends back on every
    update."""
    config = telegram_config(settings)
    if config is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN is missing, and has no default")
    secret = settings.telegram_webhook_secret
    if not secret:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET is missing, and has no default: set it to "
            "a random string of letters, digits, _ and - (up to 256)"
        )
    path = telegram_route.WEBHOOK_PATH
    if not urlsplit(url).path.endswith(path):
        log.warning("%s does not end with %s, the gateway's webhook route", url, path)
    try:
        asyncio.run(register_webhook(config, url, secret))
    except TelegramError as exc:
        raise ConfigError(f"Telegram refused the webhook {url}: {exc}") from exc
