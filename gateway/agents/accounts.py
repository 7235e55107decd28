"""Agent accounts, sign-in sessions and CSRF tokens for the web pages agents use (the agents'
console at ``/agent``; any other signed-in page can reuse ``signed_in`` and ``check_csrf``).

Passwords are hashed with scrypt (stdlib) and a per-account salt, stored in Redis under
``K.AGENT_ACCOUNT``. A sign-in makes a random session id, kept in Redis with a TTL
(``K.AGENT_SESSION``) and sent as an HttpOnly, SameSite=Strict cookie; each session has its own
CSRF token, which every state-changing request must send back (``X-CSRF-Token`` header or a
``csrf`` form field). Failed sign-ins are limited per agent name and per client address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from channels import constants as K

COOKIE = "og_agent"
CSRF_HEADER = "X-CSRF-Token"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD = 8
# scrypt's cost: about 50 ms and 16 MiB a check on a small machine.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Failed sign-ins allowed per window, per agent name and per client address.
FAIL_WINDOW_S = 15 * 60
FAIL_LIMITS = {"name": 5, "addr": 20}


class AccountError(Exception):
    """An account name or password that cannot be used; the message says why."""


class TooManyAttempts(Exception):
    """Too many failed sign-ins for a name or from an address; try again later."""

    def __init__(self, retry_after_s: int) -> None:
        minutes = max(1, round(retry_after_s / 60))
        super().__init__(f"Too many failed sign-ins. Try again in {minutes} min.")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class AgentSession:
    """A signed-in agent: their account name and the session's CSRF token."""

    id: str
    agent: str
    csrf: str


# --- accounts ---------------------------------------------------------------------------------


def hash_password(password: str, salt: bytes | None = None) -> dict[str, str]:
    """The stored form of ``password``: kdf name, salt and hash (hex)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return {"kdf": "scrypt", "salt": salt.hex(), "hash": digest.hex()}


def password_matches(password: str, stored: dict[str, str]) -> bool:
    """``password`` is the one ``stored`` was made from (constant-time comparison)."""
    if stored.get("kdf") != "scrypt":
        return False
    again = hash_password(password, bytes.fromhex(stored["salt"]))
    return hmac.compare_digest(again["hash"], stored["hash"])


def check_new_account(name: str, password: str) -> None:
    """Refuse a name the console cannot show or a password that is too short."""
    if not NAME.fullmatch(name):
        raise AccountError(
            f"{name!r} is not a usable agent name: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


async def add_account(r: aioredis.Redis, name: str, password: str) -> bool:
    """Create agent ``name`` or set a new password; True when the account is new."""
    check_new_account(name, password)
    stored = await asyncio.to_thread(hash_password, password)
    key = K.AGENT_ACCOUNT + name
    existed = bool(await r.exists(key))
    fields: dict[Any, Any] = stored  # redis-py's types want its own key union
    await r.hset(key, mapping=fields)
    return not existed


async def has_account(r: aioredis.Redis, name: str) -> bool:
    """Agent ``name`` has an account."""
    return bool(await r.exists(K.AGENT_ACCOUNT + name))


async def verify(r: aioredis.Redis, name: str, password: str, client: str) -> bool:
    """Whether ``name``/``password`` is an account; counts a failure against the name and the
    client address. Raises ``TooManyAttempts`` while either is over its limit."""
    keys = {
        "name": K.AGENT_LOGIN_FAILS + "name:" + name.lower(),
        "addr": K.AGENT_LOGIN_FAILS + "addr:" + client,
    }
    for scope, key in keys.items():
        count = await r.get(key)
        if count is not None and int(count) >= FAIL_LIMITS[scope]:
            raise TooManyAttempts(max(int(await r.ttl(key)), 1))
    raw = await r.hgetall(K.AGENT_ACCOUNT + name)
    stored = {_text(k): _text(v) for k, v in raw.items()}
    ok = bool(stored) and await asyncio.to_thread(password_matches, password, stored)
    if not ok:
        pipe = r.pipeline(transaction=True)
        for key in keys.values():
            pipe.incr(key)
            pipe.expire(key, FAIL_WINDOW_S, nx=True)
        await pipe.execute()
    return ok


# --- sessions -----------------------------------------------------------------------------------


async def start_session(r: aioredis.Redis, agent: str, ttl_s: int) -> AgentSession:
    """A new signed-in session for ``agent``."""
    session = AgentSession(
        id=secrets.token_urlsafe(32), agent=agent, csrf=secrets.token_urlsafe(32)
    )
    value = json.dumps({"agent": agent, "csrf": session.csrf})
    await r.set(K.AGENT_SESSION + session.id, value, ex=ttl_s)
    return session


async def end_session(r: aioredis.Redis, session: AgentSession) -> None:
    """Sign out: the session id stops working at once."""
    await r.delete(K.AGENT_SESSION + session.id)


async def signed_in(request: web.Request, r: aioredis.Redis) -> AgentSession | None:
    """The agent signed in on ``request`` (its session cookie names a live session), or None.

    This is the one check a page for agents needs; a state-changing request also calls
    ``check_csrf``."""
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 128:
        return None
    raw = await r.get(K.AGENT_SESSION + sid)
    if raw is None:
        return None
    data = json.loads(raw)
    agent = data.get("agent")
    if not isinstance(agent, str) or not await has_account(r, agent):
        return None  # the account was removed since
    return AgentSession(id=sid, agent=agent, csrf=str(data.get("csrf")))


def check_csrf(session: AgentSession, sent: str | None) -> None:
    """Refuse (403) a state-changing request that does not carry the session's CSRF token."""
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise web.HTTPForbidden(reason="missing or wrong CSRF token: reload the page and try again")


def set_cookie(resp: web.StreamResponse, session: AgentSession, ttl_s: int, secure: bool) -> None:
    """Send ``session``'s cookie: HttpOnly (no script reads it), SameSite=Strict (no other
    site's page sends it)."""
    resp.set_cookie(
        COOKIE,
        session.id,
        max_age=ttl_s,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def clear_cookie(resp: web.StreamResponse) -> None:
    """Forget the session cookie in the browser."""
    resp.del_cookie(COOKIE, path="/")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
