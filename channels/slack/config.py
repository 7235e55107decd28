"""The Slack channel's settings, as the channel sees them (built from the gateway's
``Settings`` by ``gateway.mounts``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SlackConfig:
    """What the Slack channel (and its agents' console) needs to run."""

    bot_token: str
    api_url: str  # the Web API's base URL (a fake one in tests)
    signing_secret: str | None  # None: no events route (Socket Mode only)
    app_token: str | None  # Socket Mode's token; None: no Socket Mode
    agent_channel: str | None  # the agents' console; None: no console
    max_text_chars: int  # a longer message is cut to this
    session_ttl_s: int  # how long a handoff's thread is remembered
    # The intents ``/omnigate resolve CONV INTENT`` may settle a conversation under.
    intents: tuple[str, ...] = field(default=())
