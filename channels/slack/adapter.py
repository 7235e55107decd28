"""The Slack adapter: slack-bolt's ``AsyncApp`` (events and interactivity, over the
``POST /slack/events`` route or Socket Mode) and slack-sdk's client that posts one message.

Listeners only translate (``channels.slack.parse``) and hand to ingress, which dedupes on the
event id; bolt answers once that is done (``process_before_response``: a few milliseconds), and
answers 503 when the message could not be queued, so Slack retries it later. Slack's own
retries of an event carry the same event id and are dropped as duplicates.

Customers: direct messages, mentions in channels and button clicks; whatever comes from a
shared channel is answered in the person's DM with the app (``channels.slack.private``).
Agents: the agents' channel is the console (``channels.slack.console``).

Sending: each reply is one or more messages (``render_reply``); the gateway's delivery posts
them one at a time, 1/s per channel, and marks each once posted, so a retried reply resumes
where it stopped. The client retries a 429 once after its ``Retry-After``; a 429 after that
is ``RetryLater``.

Streaming: a reply being generated is posted at its first checked clause and grows by
``chat.update`` at the channel's pace (``preview``); the final reply's first message updates
that message (``replace``) instead of posting a second one. Slack's own streaming methods
(``chat.startStream`` …) stream only in assistant threads; ``chat.update`` works everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine, Iterator
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from channels import handoff, payloads
from channels.base import ChannelHost, DeliveryFailed, Pace, Preview, Rendered, RetryLater
from channels.schema import ChannelName, Inbound, Outbound
from channels.slack.config import SlackConfig
from channels.slack.console import COMMAND, AgentsConsole
from channels.slack.parse import (
    event_id,
    parse_action,
    parse_mention,
    parse_message,
    split_conversation,
)
from channels.slack.private import DirectMessages
from channels.slack.render import SlackMessage, render_reply, split_mrkdwn, to_mrkdwn
from channels.slack.requests import guarded

log = logging.getLogger(__name__)

PER_CHANNEL_PER_S = 1.0  # chat.postMessage: about one message a second per channel
PREVIEW_UPDATES_PER_S = 0.5  # chat.update is Tier 3 (~50/min a workspace): previews take 30
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


class SlackChannel:
    """The bolt app of this gateway, its listeners, and the channel adapter."""

    name = ChannelName.slack
    preview_replaces = True  # a preview updates one message to all the text so far

    def __init__(self, host: ChannelHost, config: SlackConfig) -> None:
        self._host = host
        self._config = config
        self.client = AsyncWebClient(
            token=config.bot_token,
            base_url=config.api_url,
            timeout=10,
            logger=log,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        )
        bolt_log = logging.getLogger("channels.slack.bolt")
        if not any(isinstance(f, _QuietBolt) for f in bolt_log.filters):
            bolt_log.addFilter(_QuietBolt())
        # bolt logs a refused request's body (a customer's message) at INFO.
        verification = logging.getLogger("slack_bolt.RequestVerification")
        verification.setLevel(max(logging.WARNING, verification.level))
        self.bolt = AsyncApp(
            name="omnigate",
            client=self.client,
            signing_secret=config.signing_secret or "",
            request_verification_enabled=bool(config.signing_secret),
            process_before_response=True,
            logger=bolt_log,
        )
        self.signing_secret = config.signing_secret or ""
        self._dms = DirectMessages(self.client)
        self._socket: Any = None
        self._starter: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.console = AgentsConsole(host, config, self.client, self._later)
        self._register()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect Socket Mode in the background when ``SLACK_APP_TOKEN`` is set."""
        if self._config.app_token:
            self._starter = asyncio.create_task(self._connect(), name="slack-socket-mode")

    async def _connect(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket = AsyncSocketModeHandler(
            self.bolt, self._config.app_token, web_client=self.client
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
                answer.append(await self.console.on_command(command))

            await guarded(context, run())
            await ack(answer[0] if answer else None)

        @bolt.event(re.compile(r".*"))
        async def on_other_event() -> None:
            """Events we subscribe to but do not use: acknowledged, so Slack does not retry."""

    async def on_mention(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
    ) -> None:
        """An ``app_mention`` in a channel (the agents' channel is the ``message`` path's)."""
        if self.console.is_console(event.get("channel")):
            return  # agents talk in threads; the message event carries it
        inbound = parse_mention(event, event_id(body), bot_user_id, self._config.max_text_chars)
        if inbound is not None:
            await self._submit_privately(inbound)

    async def _submit_privately(self, inbound: Inbound) -> None:
        """Queue a customer's message in their own DM conversation (``channels.slack.private``);
        a message from a shared channel leaves a note in its thread, once."""
        private = await self._dms.private(inbound)
        if await self._host.ingress.submit(private) and private is not inbound:
            channel = inbound.meta.get("channel") or inbound.conversation
            self._later(self._dms.leave_note(channel, inbound.meta.get("thread_ts")))

    async def on_message(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
    ) -> None:
        """A ``message`` event: a customer's DM, or an agent's reply in a handoff thread."""
        if self.console.is_console(event.get("channel")):
            await self.console.on_message(body, event, bot_user_id)
            return
        inbound = parse_message(event, event_id(body), bot_user_id, self._config.max_text_chars)
        if inbound is not None:
            await self._host.ingress.submit(inbound)

    async def on_action(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A button click: "Return to bot" in the agents' channel, or a customer's choice."""
        value = str(action.get("value") or "")
        if not value:
            return  # a link button: Slack opened the URL
        if await self.console.on_click(body, action, value):
            return
        payload = await payloads.resolve(self._host.redis, value)
        if payload is None:
            log.info("a Slack button's stored payload has expired")
            return
        inbound = parse_action(body, action, payload)
        if inbound is not None:
            await self._submit_privately(inbound)

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- outbound (ChannelAdapter) ------------------------------------------------------------

    def render(self, out: Outbound, index: int) -> Rendered[SlackMessage]:
        """Reply ``index`` as Slack messages (``channels.slack.render.render_reply``)."""
        return render_reply(out.replies[index])

    def paces(
        self, conversation: str, *, typing: bool = False, preview: bool = False
    ) -> tuple[Pace, ...]:
        """About one message a second per Slack channel (``chat.postMessage``); a preview
        also takes a slot of the workspace's ``chat.update`` budget (Tier 3, ~50/min), of
        which previews use ``PREVIEW_UPDATES_PER_S`` and final replies the rest."""
        if typing:
            return ()
        channel, _ = split_conversation(conversation)
        paces = (Pace(f"channel:{channel}", PER_CHANNEL_PER_S),)
        return (*paces, Pace("chat.update", PREVIEW_UPDATES_PER_S)) if preview else paces

    async def send(self, out: Outbound, part: SlackMessage, number: int) -> None:
        """Post one message. A handoff's opening message becomes the thread of that handoff,
        where its later messages go. Raises ``RetryLater`` or ``DeliveryFailed``."""
        channel, thread = split_conversation(out.conversation)
        thread = out.meta.get("thread_ts") or thread
        handoff_for = out.meta.get("handoff_for")
        opening = bool(handoff_for) and out.meta.get("opening") == "1" and number == 0
        if handoff_for and not opening:
            thread = await handoff.thread_of(self._host.redis, handoff_for)
        ts = await self._post(channel, part, thread)
        if handoff_for and opening:
            await handoff.opened(self._host.redis, handoff_for, ts, self._config.session_ttl_s)

    async def preview(self, p: Preview, shown: str | None) -> str | None:
        """The checked text so far as one message: posted first, then updated. Returns its
        ts."""
        if p.meta.get("handoff_for"):
            return None  # previews are for the customer's own conversation
        channel, thread = split_conversation(p.conversation)
        thread = p.meta.get("thread_ts") or thread
        sections = split_mrkdwn(to_mrkdwn(p.so_far))
        if len(sections) != 1:
            return shown  # the final reply splits it; a preview stays one message
        message = SlackMessage(sections[0], [{"type": "section", "text": _mrkdwn(sections[0])}])
        if shown is None:
            return await self._post(channel, message, thread)
        with _translated(channel):
            await self.client.chat_update(
                channel=channel, ts=shown, text=message.text, blocks=message.blocks
            )
        return shown

    async def replace(self, out: Outbound, part: SlackMessage, shown: str) -> None:
        """The first message of the final reply as an update of the preview message
        ``shown``; posted anew when Slack cannot update it."""
        channel, _ = split_conversation(out.conversation)
        try:
            with _translated(channel):
                await self.client.chat_update(
                    channel=channel, ts=shown, text=part.text, blocks=part.blocks
                )
            return
        except DeliveryFailed as exc:
            if "message_not_found" not in str(exc) and "cant_update_message" not in str(exc):
                raise
            log.warning("Slack could not update preview %s (%s); posting", shown, exc)
        await self.send(out, part, 0)

    async def _post(self, channel: str, message: SlackMessage, thread: str | None) -> str:
        with _translated(channel):
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
        return str(resp["ts"])

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """Slack shows no typing indicator for bots outside assistant threads."""


class _QuietBolt(logging.Filter):
    """bolt warns that the token is unused when given a client: it reads SLACK_BOT_TOKEN
    from the environment itself, and our client carries that same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


@contextlib.contextmanager
def _translated(channel: str) -> Iterator[None]:
    """Slack's errors as the delivery loop's: ``RetryLater`` or ``DeliveryFailed``."""
    try:
        yield
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


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


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
