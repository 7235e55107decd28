"""The Telegram channel's settings, as the channel sees them (built from the gateway's
``Settings`` by ``gateway.mounts``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TelegramConfig:
    """What the Telegram channel needs to run."""

    bot_token: str
    api_url: str  # the Bot API's base URL (a fake one in tests)
    webhook_secret: str | None  # None: no webhook route (polling only)
    polling: bool  # run PTB's updater (getUpdates) instead of waiting for the webhook
    max_text_chars: int  # a longer message is cut to this
