"""The agents' console: the Slack channel ``OMNIGATE_AGENT_CHANNEL``, where each handoff is a
thread. It runs in the gateway, beside the Slack adapter that posts the threads.

A person's reply in a handoff thread is queued into the customer's conversation (any channel)
with ``author="agent"``; the thread's "Return to bot" button or ``/omnigate resolve`` gives the
conversation back. Both go through ingress like every message, so the worker's handoff state
machine (``workers.handoff``) sees them in order with the customer's own; the thread ↔
conversation bookkeeping is ``channels.handoff``'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels import constants as K
from channels import handoff
from channels.base import ChannelHost
from channels.schema import User
from channels.slack.config import SlackConfig
from channels.slack.parse import event_id, is_person_message, to_markdown

log = logging.getLogger(__name__)

COMMAND = "/omnigate"
HELP = (
    "`/omnigate resolve [conversation] [intent]` gives a customer's conversation back to the "
    "bot (the conversation key is in the handoff's first message); with an intent (e.g. "
    "`get_refund`), the messages the bot misread are kept as examples of it for `omnigate learn`."
)

Later = Callable[[Coroutine[Any, Any, None]], None]  # run a best-effort call in the background


class AgentsConsole:
    """The agents' side of handoff in Slack: their messages, clicks and commands."""

    def __init__(
        self, host: ChannelHost, config: SlackConfig, client: AsyncWebClient, later: Later
    ) -> None:
        self._host = host
        self._config = config
        self._client = client
        self._later = later
        self._names: dict[str, str | None] = {}

    def is_console(self, channel: object) -> bool:
        """``channel`` is the agents' channel (never, without one)."""
        return bool(self._config.agent_channel) and channel == self._config.agent_channel

    async def on_message(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
    ) -> None:
        """A message in the console: an agent's reply in a handoff thread goes to the
        customer; the channel's other chatter is not ours."""
        thread = event.get("thread_ts")
        if not thread or not is_person_message(event, bot_user_id):
            return  # the channel's own chatter, our posts, edits
        conv = await handoff.conversation_of(self._host.redis, str(thread))
        if conv is None:
            return  # a thread that is not a handoff
        agent = User(id=str(event["user"]), name=await self._user_name(str(event["user"])))
        text = agent_text(event, self._config.max_text_chars)
        if not text:
            return
        inbound = handoff.agent_inbound(
            conv, agent, f"slack-agent:{event_id(body)}", text=text, thread=str(thread)
        )
        await self._host.ingress.submit(inbound)

    async def on_click(self, body: dict[str, Any], action: dict[str, Any], value: str) -> bool:
        """A "Return to bot" click (True; handled), or another button's (False)."""
        conv = handoff.resolved_conversation(value)
        if conv is None:
            return False
        clicked_in = (body.get("container") or {}).get("channel_id")
        if not self.is_console(clicked_in):
            log.warning("a 'Return to bot' click outside the agents' channel: ignored")
            return True
        user = body.get("user") or {}
        uid = str(user.get("id") or "agent")
        click = body.get("trigger_id") or action.get("action_ts") or "?"
        await self._resolve(conv, uid, f"resolve:{click}", user.get("name"))
        self._later(self._mark_resolved(body, uid))
        return True

    async def on_command(self, command: dict[str, Any]) -> str:
        """``/omnigate resolve [conversation]`` in the agents' channel; returns the
        (ephemeral) answer."""
        words = str(command.get("text") or "").split()
        if not words or words[0] != "resolve":
            return HELP
        if not self.is_console(command.get("channel_id")):
            return "Use `/omnigate resolve` in the agents' channel."
        open_convs = await handoff.open_handoffs(self._host.redis)
        target: str | None = None
        if len(words) > 1:
            target = words[1].strip("`")
            if target not in open_convs:
                target = await handoff.conversation_of(self._host.redis, target) or target
            if target not in open_convs:
                return f"`{words[1]}` is not a conversation with an agent now."
        elif len(open_convs) == 1:
            target = open_convs[0]
        elif not open_convs:
            return "No conversation is with an agent now."
        else:
            listed = "\n".join(f"• `{c}`" for c in open_convs[:20])
            return f"Which one? `/omnigate resolve <conversation>`:\n{listed}"
        settled = words[2].strip("`") if len(words) > 2 else None
        if settled is not None and settled not in self._config.intents:
            return f"`{settled}` is not an intent of the model: " + ", ".join(
                f"`{i}`" for i in self._config.intents
            )
        uid = str(command.get("user_id") or "agent")
        click = command.get("trigger_id") or f"{uid}:{target}"
        await self._resolve(target, uid, f"resolve:{click}", command.get("user_name"), settled)
        return f"Returning `{target}` to the bot" + (
            f", settled as `{settled}`." if settled else "."
        )

    async def _resolve(
        self, conv: str, uid: str, platform_id: str, name: object, settled: str | None = None
    ) -> None:
        agent = User(id=uid, name=str(name) if name else await self._user_name(uid))
        thread = await handoff.thread_of(self._host.redis, conv)
        inbound = handoff.agent_inbound(
            conv, agent, platform_id, payload=K.RESOLVE_PAYLOAD, thread=thread, settled_as=settled
        )
        await self._host.ingress.submit(inbound)
        await handoff.closed(self._host.redis, conv)

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
            await self._client.chat_update(
                channel=channel, ts=message["ts"], text=message.get("text") or " ", blocks=blocks
            )

    async def _user_name(self, uid: str) -> str | None:
        """A person's display name (``users.info``, cached; None when it cannot be had)."""
        if uid in self._names:
            return self._names[uid]
        name = None
        try:
            resp = await self._client.users_info(user=uid)
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


def agent_text(event: dict[str, Any], max_text: int) -> str:
    """What an agent wrote in a handoff thread, for the customer: markdown, with the names of
    any files they shared (the files themselves stay in Slack)."""
    text = to_markdown(event.get("text") or "")
    files = [f.get("name") or "file" for f in event.get("files") or ()]
    if files:
        text = (text + "\n" if text else "") + "[shared: " + ", ".join(files) + "]"
    return text[:max_text]
