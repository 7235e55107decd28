"""The web agents' console: ``/agent`` (the page), sign-in and sign-out, the queue of
conversations waiting for a person on every channel, one conversation's transcript and summary,
and the agent's actions: take, reply, return to the bot, close.

An agent's reply, "Return to bot" and "Close" go into the customer's conversation through
ingress as ``channels.handoff.agent_inbound`` messages, exactly as the Slack console's do
(``channels.slack.console``), so the worker's handoff state machine handles them in order with
the customer's own messages and fills the ``Handoff`` record (agent, first reply, resolution).
Taking a conversation is an atomic claim in Redis (SET NX per handoff): a second agent is told
who has it. The page updates live from ``/agent/events`` (server-sent events), woken by the
worker's announcements (``workers.handoff.announce``) through the live fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import ValidationError

from brain.intents import known_intents, title
from brain.types import Session
from channels import constants as K
from channels import handoff
from channels.http import json_error, read_json
from channels.schema import ConversationAddress, User
from gateway.agents import accounts
from gateway.context import GATEWAY, Gateway

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
KEEPALIVE_S = 15.0  # an event at least this often, so the page refreshes its wait times
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Type": "text/html; charset=utf-8",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}


STOPPING = web.AppKey("agents_stopping", asyncio.Event)


def setup(app: web.Application) -> None:
    """Mount the console's routes."""
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_end_event_streams)
    app.router.add_get("/agent", console_page)
    app.router.add_get("/agent/login", login_page)
    app.router.add_post("/agent/login", login)
    app.router.add_post("/agent/logout", logout)
    app.router.add_get("/agent/console.js", script)
    app.router.add_get("/agent/console.css", stylesheet)
    app.router.add_get("/agent/api/queue", queue)
    app.router.add_get("/agent/api/conversation", conversation)
    app.router.add_get("/agent/api/intents", intents)
    app.router.add_post("/agent/api/take", take)
    app.router.add_post("/agent/api/reply", reply)
    app.router.add_post("/agent/api/return", give_back)
    app.router.add_post("/agent/api/close", close)
    app.router.add_get("/agent/events", events)


# --- pages and sign-in --------------------------------------------------------------------


async def console_page(request: web.Request) -> web.StreamResponse:
    """The console, for a signed-in agent (else the sign-in page)."""
    gw = request.app[GATEWAY]
    session = await accounts.signed_in(request, gw.redis)
    if session is None:
        raise web.HTTPSeeOther("/agent/login")
    page = (STATIC / "console.html").read_text()
    page = page.replace("{{agent}}", html.escape(session.agent)).replace(
        "{{csrf}}", html.escape(session.csrf)
    )
    return web.Response(text=page, headers=PAGE_HEADERS)


async def login_page(request: web.Request) -> web.Response:
    """The sign-in form."""
    return _login_form()


async def login(request: web.Request) -> web.StreamResponse:
    """Check the name and password; on success a new session and its cookie."""
    gw = request.app[GATEWAY]
    form = await request.post()
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    try:
        ok = bool(name and password) and await accounts.verify(
            gw.redis, name, password, request.remote or "unknown"
        )
    except accounts.TooManyAttempts as exc:
        resp = _login_form(str(exc), name, status=429)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp
    if not ok:
        return _login_form("Wrong name or password.", name, status=401)
    ttl = gw.settings.agent_session_ttl_s
    session = await accounts.start_session(gw.redis, name, ttl)
    resp = web.HTTPSeeOther("/agent")
    accounts.set_cookie(resp, session, ttl, secure=request.secure)
    log.info("agent %s signed in", name)
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    """Sign out (the form's CSRF field is checked)."""
    gw = request.app[GATEWAY]
    session = await accounts.signed_in(request, gw.redis)
    if session is not None:
        form = await request.post()
        accounts.check_csrf(session, str(form.get("csrf") or "") or None)
        await accounts.end_session(gw.redis, session)
    resp = web.HTTPSeeOther("/agent/login")
    accounts.clear_cookie(resp)
    return resp


def _login_form(error: str = "", name: str = "", status: int = 200) -> web.Response:
    page = (STATIC / "login.html").read_text()
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    page = page.replace("{{error}}", alert).replace("{{name}}", html.escape(name, quote=True))
    return web.Response(text=page, status=status, headers=PAGE_HEADERS)


async def script(request: web.Request) -> web.FileResponse:
    """The console's script."""
    return _static("console.js", "text/javascript")


async def stylesheet(request: web.Request) -> web.FileResponse:
    """The console's and the sign-in page's style."""
    return _static("console.css", "text/css")


def _static(name: str, kind: str) -> web.FileResponse:
    return web.FileResponse(
        STATIC / name, headers={**NO_STORE, "Content-Type": f"{kind}; charset=utf-8"}
    )


# --- reading ------------------------------------------------------------------------------


async def queue(request: web.Request) -> web.Response:
    """The conversations with a person now, on every channel, longest wait first."""
    gw, _ = await _agent(request)
    items = []
    for conv in await handoff.open_handoffs(gw.redis):
        session = await _session(gw.redis, conv)
        if session is None or session.handoff is None:
            continue
        h = session.handoff
        items.append(
            {
                "conv": conv,
                "channel": ConversationAddress.parse(conv).channel.value,
                "customer": _customer(session),
                "reason": h.reason,
                "requested_at": h.requested_at.isoformat(),
                "waiting_s": _seconds_since(h.requested_at),
                "answered": h.accepted_at is not None,
                "taken_by": await _taken_by(gw.redis, conv, h.id),
            }
        )
    items.sort(key=lambda i: str(i["requested_at"]))
    return web.json_response({"queue": items}, headers=NO_STORE)


async def conversation(request: web.Request) -> web.Response:
    """One conversation: its transcript, the bot's summary and who has it."""
    gw, _ = await _agent(request)
    conv = request.query.get("conv", "")
    session = await _session(gw.redis, conv)
    if session is None or session.handoff is None:
        return json_error(404, f"no handoff in conversation {conv!r}")
    h = session.handoff
    return web.json_response(
        {
            "conv": conv,
            "channel": ConversationAddress.parse(conv).channel.value,
            "customer": _customer(session),
            "state": session.state,
            "reason": h.reason,
            "summary": h.summary,
            "requested_at": h.requested_at.isoformat(),
            "taken_by": await _taken_by(gw.redis, conv, h.id),
            "transcript": [
                {"role": i.role, "text": _shown(i.role, i.text), "at": i.at.isoformat()}
                for i in session.history
            ],
        },
        headers=NO_STORE,
    )


async def intents(request: web.Request) -> web.Response:
    """The intents an agent may settle a conversation under when closing it: the intent
    model's labels, with their human names."""
    await _agent(request)
    return web.json_response(
        {"intents": [{"name": n, "title": title(n)} for n in known_intents()]}, headers=NO_STORE
    )


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``change`` whenever a handed-off conversation or a claim changes,
    and at least every ``KEEPALIVE_S``."""
    gw, _ = await _agent(request)
    resp = web.StreamResponse(
        headers={**NO_STORE, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    stopping = request.app[STOPPING]
    async with gw.live.listen(K.AGENTS_LIVE) as changes:
        with contextlib.suppress(ConnectionResetError):
            while not stopping.is_set():
                event = await _next_change(changes, stopping)
                await resp.write(f"event: change\ndata: {json.dumps(event)}\n\n".encode())
    return resp


async def _next_change(
    changes: asyncio.Queue[dict[str, Any]], stopping: asyncio.Event
) -> dict[str, Any]:
    """The next change, or an empty one after ``KEEPALIVE_S`` or when the gateway stops."""
    get = asyncio.ensure_future(changes.get())
    stop = asyncio.ensure_future(stopping.wait())
    done, pending = await asyncio.wait(
        {get, stop}, timeout=KEEPALIVE_S, return_when="FIRST_COMPLETED"
    )
    for task in pending:
        task.cancel()
    return get.result() if get in done else {}


async def _end_event_streams(app: web.Application) -> None:
    """On shutdown: the open event streams end, so the gateway need not wait for them (the
    page reconnects, to another replica or to this one restarted)."""
    app[STOPPING].set()


# --- actions ------------------------------------------------------------------------------


async def take(request: web.Request) -> web.Response:
    """Take a conversation; 409 with who has it when another agent already did."""
    _, agent, _, _ = await _action(request)
    return web.json_response({"taken_by": agent.agent})


async def reply(request: web.Request) -> web.Response:
    """Answer the customer on their own channel (taking the conversation if nobody has)."""
    gw, agent, conv, body = await _action(request)
    text = str(body.get("text") or "").strip()[: gw.settings.max_text_chars]
    if not text:
        return json_error(400, "write something to send")
    inbound = handoff.agent_inbound(
        conv, _person(agent), f"web-agent:{uuid.uuid4().hex}", text=text
    )
    await gw.ingress.submit(inbound)
    return web.json_response({"sent": True})


async def give_back(request: web.Request) -> web.Response:
    """Return the conversation to the bot (the Slack console's "Return to bot")."""
    return await _finish(request, K.RESOLVE_PAYLOAD)


async def close(request: web.Request) -> web.Response:
    """Close the conversation: the customer is thanked, the bot answers what comes next. An
    optional ``intent`` (one of ``/agent/api/intents``) says what the customer wanted: the
    messages the bot misread become labelled examples for ``omnigate learn``."""
    return await _finish(request, K.CLOSE_PAYLOAD)


async def _finish(request: web.Request, payload: str) -> web.Response:
    gw, agent, conv, body = await _action(request)
    intent = str(body.get("intent") or "").strip() or None
    if intent is not None and intent not in known_intents():
        return json_error(400, f"unknown intent {intent!r}; see /agent/api/intents")
    inbound = handoff.agent_inbound(
        conv,
        _person(agent),
        f"web-agent:{uuid.uuid4().hex}",
        payload=payload,
        settled_as=intent,
    )
    await gw.ingress.submit(inbound)
    await handoff.closed(gw.redis, conv)
    return web.json_response({"finished": True})


# --- helpers ------------------------------------------------------------------------------


async def _agent(request: web.Request) -> tuple[Gateway, accounts.AgentSession]:
    gw = request.app[GATEWAY]
    session = await accounts.signed_in(request, gw.redis)
    if session is None:
        raise web.HTTPUnauthorized(reason="sign in at /agent/login first")
    return gw, session


async def _action(
    request: web.Request,
) -> tuple[Gateway, accounts.AgentSession, str, dict[str, object]]:
    """A state-changing request on one conversation: a signed-in agent, the CSRF token, a
    conversation with a person now, and this agent's claim on it (taken here if free)."""
    gw, agent = await _agent(request)
    accounts.check_csrf(agent, request.headers.get(accounts.CSRF_HEADER))
    body = await read_json(request)
    conv = str(body.get("conv") or "")
    session = await _session(gw.redis, conv)
    if session is None or session.handoff is None or session.state != "with_agent":
        raise _conflict("This conversation is back with the bot.")
    key = _claim_key(conv, session.handoff.id)
    if await gw.redis.set(key, agent.agent, nx=True, ex=gw.settings.session_ttl_s):
        await gw.live.publish(K.AGENTS_LIVE, {"conv": conv, "taken_by": agent.agent})
    else:
        holder = await _taken_by(gw.redis, conv, session.handoff.id)
        if holder != agent.agent:
            raise _conflict(f"Already taken by {holder}.", taken_by=holder)
    return gw, agent, conv, body


def _shown(role: str, text: str) -> str:
    """A transcript line as the agent reads it: an agent's "Return to bot" or "Close" is kept
    as the button's payload (``workers.memory.transcript_text``); say what it did."""
    if role == "agent" and text.startswith("[button] " + K.RESOLVE_PAYLOAD):
        return "(returned the conversation to the bot)"
    if role == "agent" and text == "[button] " + K.CLOSE_PAYLOAD:
        return "(closed the conversation)"
    return text


def _conflict(message: str, **extra: object) -> web.HTTPConflict:
    return web.HTTPConflict(
        text=json.dumps({"error": message, **extra}), content_type="application/json"
    )


async def _session(r: aioredis.Redis, conv: str) -> Session | None:
    try:
        ConversationAddress.parse(conv)
    except ValueError:
        return None
    raw = await r.get(K.SESSION + conv)
    if raw is None:
        return None
    try:
        return Session.model_validate_json(raw)
    except ValidationError:
        return None


async def _taken_by(r: aioredis.Redis, conv: str, handoff_id: str) -> str | None:
    raw = await r.get(_claim_key(conv, handoff_id))
    return raw.decode() if isinstance(raw, bytes) else raw


def _claim_key(conv: str, handoff_id: str) -> str:
    return f"{K.AGENT_CLAIM}{conv}:{handoff_id}"


def _person(agent: accounts.AgentSession) -> User:
    return User(id=agent.agent, name=agent.agent)


def _customer(session: Session) -> str:
    h = session.handoff
    user = h.customer if h is not None else None
    return (user.name or user.id) if user is not None else "customer"


def _seconds_since(at: datetime) -> int:
    return max(0, int(time.time() - at.astimezone(UTC).timestamp()))
