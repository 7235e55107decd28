"""Web visitor tokens: a session id and an expiry, signed with ``OMNIGATE_WEB_SECRET``.

A token reads ``v1.<session_id>.<expires_at>.<signature>``: ``session_id`` is 32 hex digits,
``expires_at`` whole Unix seconds, ``signature`` the unpadded base64url HMAC-SHA256 of
everything before it. The session id is the web conversation id, so whoever holds a valid token
reads that conversation and no other. Any gateway replica with the same secret checks any
token; renewing one (``POST /web/session``) also needs the session's start mark in Redis, which
expires at ``OMNIGATE_WEB_SESSION_MAX_AGE``, so no token is renewed forever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import NamedTuple

VERSION = "v1"
_SESSION_ID = re.compile(r"[0-9a-f]{32}")


class BadToken(Exception):
    """A visitor token that is missing, malformed, forged or expired; ``str()`` says which."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ExpiredToken(BadToken):
    """A genuine token past its expiry."""


class Visitor(NamedTuple):
    """What a genuine token says: whose conversation, and until when."""

    session_id: str
    expires_at: int


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return secrets.token_hex(16)


def sign(secret: str, session_id: str, expires_at: int) -> str:
    """The token for ``session_id`` valid until ``expires_at`` (Unix seconds)."""
    if not _SESSION_ID.fullmatch(session_id):
        raise ValueError(f"session id must be 32 hex digits, got {session_id!r}")
    body = f"{VERSION}.{session_id}.{int(expires_at)}"
    return f"{body}.{_mac(secret, body)}"


def issue(secret: str, session_id: str, ttl_s: int, now: float | None = None) -> str:
    """A token for ``session_id`` valid ``ttl_s`` seconds from now."""
    return sign(secret, session_id, int((time.time() if now is None else now) + ttl_s))


def verify(secret: str, token: str | None, now: float | None = None) -> Visitor:
    """The visitor of a genuine, unexpired token; raises ``BadToken`` otherwise."""
    if not token:
        raise BadToken("token is missing: get one from POST /web/session")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise BadToken("token is malformed")
    _, session_id, expires, mac = parts
    if not _SESSION_ID.fullmatch(session_id) or not expires.isdigit():
        raise BadToken("token is malformed")
    expected = _mac(secret, f"{VERSION}.{session_id}.{expires}")
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise BadToken("token signature is invalid")
    if int(expires) <= (time.time() if now is None else now):
        raise ExpiredToken("token has expired: get a new one from POST /web/session")
    return Visitor(session_id, int(expires))


def _mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
