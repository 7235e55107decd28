"""The API channel's settings, as the channel sees them (built from the gateway's ``Settings``
by ``gateway.mounts``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiConfig:
    """What ``POST /api/chat`` needs."""

    api_token: str | None  # the bearer token asked for; None: open
    chat_timeout_s: float  # how long a request waits for its turn's replies
    max_text_chars: int  # a longer message is refused (413)
