"""The Slack channel in the gateway: slack-bolt's ``AsyncApp`` on ``POST /slack/events`` (events
and interactivity) or over Socket Mode, and the adapter that posts replies with slack-sdk.

Mounted by ``setup(app)`` when ``SLACK_BOT_TOKEN`` is set, with ``SLACK_SIGNING_SECRET`` (the
HTTP route; bolt checks each request's v0 signature and 5-minute window, 401 otherwise) and/or
``SLACK_APP_TOKEN`` (Socket Mode, for development without a public URL).

Listeners only translate (``channels.slack``) and hand to ingress, which dedupes on the event id;
bolt answers once that is done (``process_before_response``: a few milliseconds), and answers
503 when the message could not be queued, so Slack retries it later. Slack's own retries of an
event carry the same event id and are dropped as duplicates.

Customers: direct messages, mentions in channels and button clicks; whatever comes from a
shared channel is answered in the person's DM with the app (``gateway.slack_private``).
Agents: in ``OMNIGATE_AGENT_CHANNEL``, each handoff is a thread; a person's reply there is queued
into the customer's conversation (any channel) with ``author="agent"``; the thread's
"Return to bot" button or ``/omnigate resolve`` gives the conversation back.

Sending: each reply is one or more messages (``render_reply``); the gateway's delivery posts
them one at a time, 1/s per channel, and marks each once posted, so a retried reply resumes
where it stopped. The client retries a 429 once after its ``Retry-After``; a 429 after that
is ``RetryLater``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from channels import constants as K
from channels import payloads
from channels.base import DeliveryFailed, Pace, Rendered, RetryLater
from channels.schema import ChannelName, Inbound, Outbound, User
from channels.slack import (
    SlackMessage,
    agent_inbound,
    agent_text,
    is_person_message,
    parse_action,
    parse_mention,
    parse_message,
    render_reply,
    split_conversation,
)
from gateway.context import GATEWAY, Gateway, json_error
from gateway.settings import ConfigError
from gateway.slack_private import DirectMessages
from gateway.slack_requests import (
    SHAPE_ERRORS,
    MalformedRequest,
    answer,
    check_body,
    guarded,
    signed,
)

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/omnigate"
PER_CHANNEL_PER_S = 1.0  # chat.postMessage: about one message a second per channel
RATE_LIMIT_RETRIES = 1  # the client's own retries of a 429, before RetryLater
NETWORK_RETRY_S = 2.0
# Errors after which the same message will never be accepted.
GONE = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
        "no_permission",
        "missing_scope",
        "restricted_action",
        "msg_too_long",
        "too_many_attachments",
        "user_not_found",
        "not_authed",
        "team_access_not_granted",
    }
)
HELP = (
    "`/omnigate resolve [conversation]` gives a customer's conversation back to the bot "
    "(the conversation key is in the handoff's first message)."
)


def setup(app: web.Application) -> None:
    """Mount the Slack channel when ``SLACK_BOT_TOKEN`` is set; otherwise do nothing."""
    gw = app[GATEWAY]
    s = gw.settings
    if not s.slack_bot_token:
        return
    if not s.slack_signing_secret and not s.slack_app_token:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is missing, and has no default: /slack/events checks the "
            "signature of every request with it (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    channel = SlackChannel(gw)
    gw.adapters[ChannelName.slack] = channel
    app[SLACK] = channel
    if s.slack_signing_secret:
        app.router.add_post(EVENTS_PATH, events)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        channel.start()
        yield
        await channel.close()  # idempotent: the gateway closes its adapters first

    app.cleanup_ctx.append(lifecycle)


class SlackChannel:
    """The bolt app of this gateway, its listeners, and the channel adapter."""

    name = ChannelName.slack

    def __init__(self, gw: Gateway) -> None:
        self._gw = gw
        s = gw.settings
        self.client = AsyncWebClient(
            token=s.slack_bot_token,
            base_url=s.slack_api_url,
            timeout=10,
            logger=log,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        )
        bolt_log = logging.getLogger("gateway.slack.bolt")
        if not any(isinstance(f, _QuietBolt) for f in bolt_log.filters):
            bolt_log.addFilter(_QuietBolt())
        # bolt logs a refused request's body (a customer's message) at INFO.
        verification = logging.getLogger("slack_bolt.RequestVerification")
        verification.setLevel(max(logging.WARNING, verification.level))
        self.bolt = AsyncApp(
            name="omnigate",
            client=self.client,
            signing_secret=s.slack_signing_secret or "",
            request_verification_enabled=bool(s.slack_signing_secret),
            process_before_response=True,
            logger=bolt_log,
        )
        self.signing_secret = s.slack_signing_secret or ""
        self._dms = DirectMessages(self.client)
        self._names: dict[str, str | None] = {}
        self._socket: Any = None
        self._starter: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._register()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect Socket Mode in the background when ``SLACK_APP_TOKEN`` is set."""
        if self._gw.settings.slack_app_token:
            self._starter = asyncio.create_task(self._connect(), name="slack-socket-mode")

    async def _connect(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket = AsyncSocketModeHandler(
            self.bolt, self._gw.settings.slack_app_token, web_client=self.client
        )
        delay = 1.0
        while True:
            try:
                await self._socket.connect_async()
                log.info("Slack: Socket Mode connected")
                return
            except Exception as exc:
                log.error("Slack Socket Mode failed (%s); retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)

    async def close(self) -> None:
        """Disconnect Socket Mode; let pending best-effort calls finish."""
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
            self._starter = None
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        for t in list(self._background):
            with contextlib.suppress(Exception):
                await t

    # --- inbound: bolt listeners --------------------------------------------------------------

    def _register(self) -> None:
        bolt = self.bolt

        # Each listener is guarded: a payload of the wrong shape or a message that could not
        # be queued is left in bolt's context for the route to answer (400, 503).
        @bolt.event("message")
        async def on_message(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
            await guarded(context, self.on_message(body, event, context.bot_user_id))

        @bolt.event("app_mention")
        async def on_mention(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
            await guarded(context, self.on_mention(body, event, context.bot_user_id))

        @bolt.action(re.compile(r".*"))
        async def on_action(
            ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any
        ) -> None:
            await guarded(context, self.on_action(body, action))
            await ack()

        @bolt.command(COMMAND)
        async def on_command(ack: Any, command: dict[str, Any], context: Any) -> None:
            answer: list[str] = []

            async def run() -> None:
                answer.append(await self.on_command(command))

            await guarded(context, run())
            await ack(answer[0] if answer else None)

        @bolt.event(re.compile(r".*"))
        async def on_other_event() -> None:
            """Events we subscribe to but do not use: acknowledged, so Slack does not retry."""

    async def on_mention(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
    ) -> None:
        """An ``app_mention`` in a channel (the agents' channel is the ``message`` path's)."""
        if event.get("channel") == self._gw.settings.agent_channel:
            return  # agents talk in threads; the message event carries it
        s = self._gw.settings
        inbound = parse_mention(event, _event_id(body), bot_user_id, s.max_text_chars)
        if inbound is not None:
            await self._submit_privately(inbound)

    async def _submit_privately(self, inbound: Inbound) -> None:
        """Queue a customer's message in their own DM conversation (``gateway.slack_private``);
        a message from a shared channel leaves a note in its thread, once."""
        private = await self._dms.private(inbound)
        if await self._gw.ingress.submit(private) and private is not inbound:
            channel = inbound.meta.get("channel") or inbound.conversation
            self._later(self._dms.leave_note(channel, inbound.meta.get("thread_ts")))

    async def on_message(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
    ) -> None:
        """A ``message`` event: a customer's DM, or an agent's reply in a handoff thread."""
        s = self._gw.settings
        if s.agent_channel and event.get("channel") == s.agent_channel:
            await self._agent_message(body, event, bot_user_id)
            return
        inbound = parse_message(event, _event_id(body), bot_user_id, s.max_text_chars)
        if inbound is not None:
            await self._gw.ingress.submit(inbound)

    async def _agent_message(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
    ) -> None:
        thread = event.get("thread_ts")
        if not thread or not is_person_message(event, bot_user_id):
            return  # the channel's own chatter, our posts, edits
        conv = await self._conv_of_thread(str(thread))
        if conv is None:
            return  # a thread that is not a handoff
        agent = User(id=str(event["user"]), name=await self._user_name(str(event["user"])))
        text = agent_text(event, self._gw.settings.max_text_chars)
        if not text:
            return
        inbound = agent_inbound(
            conv, agent, f"slack-agent:{_event_id(body)}", text=text, thread=str(thread)
        )
        await self._gw.ingress.submit(inbound)

    async def on_action(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A button click: "Return to bot" in the agents' channel, or a customer's choice."""
        value = str(action.get("value") or "")
        if not value:
            return  # a link button: Slack opened the URL
        if value.startswith(K.RESOLVE_PAYLOAD + ":"):
            clicked_in = (body.get("container") or {}).get("channel_id")
            if clicked_in != self._gw.settings.agent_channel:
                log.warning("a 'Return to bot' click outside the agents' channel: ignored")
                return
            conv = value[len(K.RESOLVE_PAYLOAD) + 1 :]
            user = body.get("user") or {}
            uid = str(user.get("id") or "agent")
            click = body.get("trigger_id") or action.get("action_ts") or "?"
            await self._resolve(conv, uid, f"resolve:{click}", user.get("name"))
            self._later(self._mark_resolved(body, uid))
            return
        payload = await payloads.resolve(self._gw.redis, value)
        if payload is None:
            log.info("a Slack button's stored payload has expired")
            return
        inbound = parse_action(body, action, payload)
        if inbound is not None:
            await self._submit_privately(inbound)

    async def on_command(self, command: dict[str, Any]) -> str:
        """``/omnigate resolve [conversation]`` in the agents' channel; returns the
        (ephemeral) answer."""
        s = self._gw.settings
        words = str(command.get("text") or "").split()
        if not words or words[0] != "resolve":
            return HELP
        if command.get("channel_id") != s.agent_channel:
            return "Use `/omnigate resolve` in the agents' channel."
        open_convs = await self._open_handoffs()
        target: str | None = None
        if len(words) > 1:
            target = words[1].strip("`")
            if target not in open_convs:
                target = await self._conv_of_thread(target) or target
            if target not in open_convs:
                return f"`{words[1]}` is not a conversation with an agent now."
        elif len(open_convs) == 1:
            target = open_convs[0]
        elif not open_convs:
            return "No conversation is with an agent now."
        else:
            listed = "\n".join(f"• `{c}`" for c in open_convs[:20])
            return f"Which one? `/omnigate resolve <conversation>`:\n{listed}"
        uid = str(command.get("user_id") or "agent")
        click = command.get("trigger_id") or f"{uid}:{target}"
        await self._resolve(target, uid, f"resolve:{click}", command.get("user_name"))
        return f"Returning `{target}` to the bot."

    async def _resolve(self, conv: str, uid: str, platform_id: str, name: object) -> None:
        agent = User(id=uid, name=str(name) if name else await self._user_name(uid))
        thread = await self._gw.redis.get(K.AGENT_THREAD_OF + conv)
        inbound = agent_inbound(
            conv,
            agent,
            platform_id,
            payload=K.RESOLVE_PAYLOAD,
            thread=thread.decode() if isinstance(thread, bytes) else None,
        )
        await self._gw.ingress.submit(inbound)
        await self._gw.redis.srem(K.HANDOFF_OPEN, conv)

    async def _mark_resolved(self, body: dict[str, Any], uid: str) -> None:
        """Replace the clicked "Return to bot" button with who clicked it (best effort)."""
        message = body.get("message") or {}
        channel = (body.get("container") or {}).get("channel_id")
        if not channel or not message.get("ts"):
            return
        blocks = [b for b in message.get("blocks") or () if b.get("type") != "actions"]
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"Returned to the bot by <@{uid}>"}],
            }
        )
        with contextlib.suppress(SlackApiError, aiohttp.ClientError, TimeoutError):
            await self.client.chat_update(
                channel=channel, ts=message["ts"], text=message.get("text") or " ", blocks=blocks
            )

    async def _open_handoffs(self) -> list[str]:
        """Conversations with an agent now (the set, pruned of those back with the bot)."""
        r = self._gw.redis
        members = sorted(_text(m) for m in await r.smembers(K.HANDOFF_OPEN))
        still = []
        for conv in members:
            raw = await r.get(K.SESSION + conv)
            try:
                state = json.loads(raw).get("state") if raw else None
            except ValueError:
                state = None
            if state == "with_agent":
                still.append(conv)
            else:
                await r.srem(K.HANDOFF_OPEN, conv)
        return still

    async def _conv_of_thread(self, thread: str) -> str | None:
        conv = await self._gw.redis.get(K.AGENT_THREAD + thread)
        return conv.decode() if isinstance(conv, bytes) else conv

    async def _user_name(self, uid: str) -> str | None:
        """A person's display name (``users.info``, cached; None when it cannot be had)."""
        if uid in self._names:
            return self._names[uid]
        name = None
        try:
            resp = await self.client.users_info(user=uid)
            user = resp.get("user") or {}
            profile = user.get("profile") or {}
            name = (
                profile.get("display_name")
                or profile.get("real_name")
                or user.get("real_name")
                or user.get("name")
                or None
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("users.info %s: %s", uid, exc)
            return None
        if len(self._names) > 10_000:
            self._names.clear()
        self._names[uid] = name
        return name

    def _later(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- outbound (ChannelAdapter) ------------------------------------------------------------

    def render(self, out: Outbound, index: int) -> Rendered[SlackMessage]:
        """Reply ``index`` as Slack messages (``channels.slack.render_reply``)."""
        return render_reply(out.replies[index])

    def paces(self, conversation: str, *, typing: bool = False) -> tuple[Pace, ...]:
        """About one message a second per Slack channel (``chat.postMessage``)."""
        if typing:
            return ()
        channel, _ = split_conversation(conversation)
        return (Pace(f"channel:{channel}", PER_CHANNEL_PER_S),)

    async def send(self, out: Outbound, part: SlackMessage, number: int) -> None:
        """Post one message. A handoff's opening message becomes the thread of that handoff,
        where its later messages go. Raises ``RetryLater`` or ``DeliveryFailed``."""
        channel, thread = split_conversation(out.conversation)
        thread = out.meta.get("thread_ts") or thread
        handoff_for = out.meta.get("handoff_for")
        opening = bool(handoff_for) and out.meta.get("opening") == "1" and number == 0
        if handoff_for and not opening:
            thread = await self._conv_thread(handoff_for)
        ts = await self._post(channel, part, thread)
        if handoff_for and opening:
            ttl = self._gw.settings.session_ttl_s
            pipe = self._gw.redis.pipeline(transaction=True)
            pipe.set(K.AGENT_THREAD + ts, handoff_for, ex=ttl)
            pipe.set(K.AGENT_THREAD_OF + handoff_for, ts, ex=ttl)
            pipe.sadd(K.HANDOFF_OPEN, handoff_for)
            await pipe.execute()

    async def _conv_thread(self, conv: str) -> str | None:
        ts = await self._gw.redis.get(K.AGENT_THREAD_OF + conv)
        return ts.decode() if isinstance(ts, bytes) else ts

    async def _post(self, channel: str, message: SlackMessage, thread: str | None) -> str:
        try:
            try:
                resp = await self.client.chat_postMessage(
                    channel=channel,
                    text=message.text,
                    blocks=message.blocks,
                    thread_ts=thread,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except SlackApiError as exc:
                if _error(exc) not in ("invalid_blocks", "invalid_blocks_format"):
                    raise
                # Should Slack refuse our blocks, the customer gets the words without them.
                log.error("Slack refused our blocks (%s); posting text", _error(exc))
                resp = await self.client.chat_postMessage(
                    channel=channel,
                    text=message.text,
                    thread_ts=thread,
                    unfurl_links=False,
                    unfurl_media=False,
                )
        except SlackApiError as exc:
            status, error = exc.response.status_code, _error(exc)
            if status == 429 or error == "ratelimited":
                wait = _retry_after(exc)
                reason = f"Slack rate limit for {channel}"
                raise RetryLater(wait, reason, hold=f"channel:{channel}") from exc
            if error in GONE:
                raise DeliveryFailed(f"Slack channel {channel}: {error}") from exc
            if status >= 500 or error in (
                "internal_error",
                "fatal_error",
                "service_unavailable",
                "request_timeout",
            ):
                raise RetryLater(NETWORK_RETRY_S, f"Slack error {status} {error}") from exc
            raise DeliveryFailed(f"Slack channel {channel}: {error or status}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(NETWORK_RETRY_S, f"Slack unreachable: {exc!r}") from exc
        return str(resp["ts"])

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """Slack shows no typing indicator for bots outside assistant threads."""


SLACK = web.AppKey("slack", SlackChannel)


class _QuietBolt(logging.Filter):
    """bolt warns that the token is unused when given a client: it reads SLACK_BOT_TOKEN
    from the environment itself, and our client carries that same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _event_id(body: dict[str, Any]) -> str:
    """The Events API id (the same on Slack's retries); Socket Mode envelopes carry it too."""
    return str(
        body.get("event_id")
        or body.get("event", {}).get("client_msg_id")
        or body.get("event", {}).get("ts")
        or "?"
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _error(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return str(data.get("error") or "")


def _retry_after(exc: SlackApiError) -> float:
    value: Any = (exc.response.headers or {}).get("Retry-After") or (
        exc.response.headers or {}
    ).get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(float(value), 0.5)
    except (TypeError, ValueError):
        return 1.0


# --- the HTTP route ---------------------------------------------------------------------------


async def events(request: web.Request) -> web.Response:
    """Events API and interactivity requests from Slack, through bolt: 401 for a bad or stale
    signature; 400 for a signed body that is not a readable Slack payload; 200 once queued (or
    a duplicate, or ignored); 503 when it could not be queued, so Slack retries
    (``gateway.slack_requests``)."""
    channel = request.app[SLACK]
    raw = await request.read()
    secret = channel.signing_secret
    if not signed(secret, request.headers, raw):
        return json_error(401, "invalid or stale request signature")
    try:
        check_body(raw, request.content_type)
        bolt_req = await to_bolt_request(request)
    except MalformedRequest as exc:
        return json_error(400, str(exc))
    except SHAPE_ERRORS:  # bolt reading the context (team, user, channel) out of the body
        return json_error(400, "a Slack payload with fields of the wrong shape")
    try:
        bolt_resp = await channel.bolt.async_dispatch(bolt_req)
    except SHAPE_ERRORS:  # bolt matching listeners against the payload
        return json_error(400, "a Slack payload with fields of the wrong shape")
    failed = answer(bolt_req.context, bolt_resp.status, bolt_resp.body)
    return failed or await to_aiohttp_response(bolt_resp)
