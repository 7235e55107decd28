"""The web chat's settings, as the channel sees them (built from the gateway's ``Settings`` by
``gateway.mounts``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebConfig:
    """What the web chat needs to run."""

    secret: str | None  # the HMAC key of visitor tokens; None: sessions and sockets answer 503
    log_ttl_s: int  # how long a conversation's reply frames are kept for resume
    token_ttl_s: int  # a visitor token's lifetime
    session_max_age_s: int  # a visitor session renews its token only this long
    new_sessions_per_min: int  # per client address
    max_body_bytes: int  # the largest websocket frame
    max_text_chars: int  # a longer message frame is refused
    # The pages that may start sessions and open sockets (besides the gateway's own); None: any.
    origins: frozenset[str] | None = None
