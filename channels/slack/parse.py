"""Slack events → ``Inbound``. Pure functions: no I/O, no Redis, no client.

Conversations. A direct message is the DM channel (``D…``); a mention in a channel opens a
conversation per thread, ``<channel>/<thread root ts>``, so two buyers in one shared channel
never share a session. ``Inbound.meta`` carries ``channel`` and ``thread_ts`` (where the answer
goes); the delivery gets them back in ``Outbound.meta``.

``parse_message`` (DMs), ``parse_mention`` (``app_mention`` in channels) and ``parse_action``
(Block Kit button clicks) build an ``Inbound`` whose ``platform_id`` is the Events API
``event_id`` (retries of one event carry the same one) or the click's ``trigger_id``.
"""

from __future__ import annotations

import html
import re
from typing import Any

from channels.schema import Attachment, ChannelName, Inbound, User

ACTION_PREFIX = "og_btn_"  # action_id of our buttons: og_btn_<index>
# Message subtypes that are still a person writing (everything else: edits, joins, bots…).
USER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})


# --- conversations ----------------------------------------------------------------------------


def conversation_of(channel: str, thread_root: str | None, direct: bool) -> str:
    """The conversation id: the DM channel, or ``channel/thread root`` in a channel."""
    if direct or not thread_root:
        return channel
    return f"{channel}/{thread_root}"


def split_conversation(conversation: str) -> tuple[str, str | None]:
    """``conversation_of`` undone: (channel id, thread ts or None)."""
    channel, _, thread = conversation.partition("/")
    return channel, thread or None


def is_direct(channel: str, channel_type: str | None = None) -> bool:
    """A one-to-one DM with the app (``D…`` channel ids, ``channel_type: im``)."""
    return channel_type == "im" if channel_type else channel.startswith("D")


# --- inbound ----------------------------------------------------------------------------------


def is_person_message(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """A message a person wrote: not a bot's (ours included), not an edit, join or deletion."""
    if event.get("bot_id") or event.get("subtype", "") not in USER_SUBTYPES | {""}:
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def parse_message(
    event: dict[str, Any], event_id: str, bot_user_id: str | None, max_text: int
) -> Inbound | None:
    """A direct message to the app → ``Inbound``; anything else (channels, bots, edits) → None.
    In channels the app answers mentions only (``parse_mention``): a channel's every message
    also comes as a ``message`` event, and the mention would be answered twice."""
    channel = event.get("channel") or ""
    if not is_direct(channel, event.get("channel_type")):
        return None
    if not is_person_message(event, bot_user_id):
        return None
    return _inbound(event, event_id, bot_user_id, max_text, direct=True)


def parse_mention(
    event: dict[str, Any], event_id: str, bot_user_id: str | None, max_text: int
) -> Inbound | None:
    """An ``app_mention`` in a channel → ``Inbound`` in the thread it starts or belongs to."""
    if not event.get("channel") or event.get("bot_id") or not event.get("user"):
        return None
    if event.get("user") == bot_user_id:
        return None
    return _inbound(event, event_id, bot_user_id, max_text, direct=False)


def _inbound(
    event: dict[str, Any], event_id: str, bot_user_id: str | None, max_text: int, direct: bool
) -> Inbound | None:
    channel = str(event["channel"])
    thread = event.get("thread_ts") or (None if direct else event.get("ts"))
    text = plain_text(event.get("text") or "", bot_user_id)
    attachments = attachments_of(event)
    if not text and not attachments:
        return None
    meta = {"channel": channel}
    if thread:
        meta["thread_ts"] = str(thread)
    if event.get("team"):
        meta["team"] = str(event["team"])
    return Inbound(
        channel=ChannelName.slack,
        platform_id=event_id,
        user=User(id=str(event["user"])),
        conversation=conversation_of(channel, thread, direct),
        text=text[:max_text],
        attachments=attachments,
        meta=meta,
    )


def parse_action(body: dict[str, Any], action: dict[str, Any], payload: str) -> Inbound | None:
    """A click on one of our buttons (a ``block_actions`` payload) → ``Inbound`` with
    ``payload``, in the conversation of the message that carried the button."""
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get(
        "id"
    )
    user = body.get("user") or {}
    if not channel or not user.get("id"):
        return None
    message = body.get("message") or {}
    container = body.get("container") or {}
    thread = container.get("thread_ts") or message.get("thread_ts")
    direct = is_direct(channel)
    meta = {"channel": channel}
    if thread:
        meta["thread_ts"] = str(thread)
    if (body.get("team") or {}).get("id"):
        meta["team"] = str(body["team"]["id"])
    click = body.get("trigger_id") or f"{container.get('message_ts')}:{action.get('action_ts')}"
    return Inbound(
        channel=ChannelName.slack,
        platform_id=f"action:{click}",
        user=User(id=str(user["id"]), name=(user.get("name") or None)),
        conversation=conversation_of(channel, thread, direct),
        payload=payload,
        meta=meta,
    )


def attachments_of(event: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files shared with a message (``url_private`` needs the bot token to download)."""
    out = []
    for f in event.get("files") or ():
        mime = f.get("mimetype") or None
        kind = (
            "photo"
            if mime and mime.startswith("image/")
            else "audio"
            if mime and mime.startswith("audio/")
            else "video"
            if mime and mime.startswith("video/")
            else "document"
        )
        size = f.get("size")
        out.append(
            Attachment(
                kind=kind,
                url=f.get("url_private") or None,
                file_id=f.get("id") or None,
                name=f.get("name") or None,
                size=size if isinstance(size, int) and size >= 0 else None,
                mime=mime,
            )
        )
    return tuple(out)


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_OTHER = re.compile(r"<[^>]*>")


def plain_text(text: str, bot_user_id: str | None = None) -> str:
    """A customer's Slack text as plain words for the brain: our own mention removed, links as
    their label and URL, other mentions as ``@U…``, entities decoded."""

    def link(m: re.Match[str]) -> str:
        url, label = m.group(1).removeprefix("mailto:"), m.group(2)
        if not label or url.endswith(label):  # <http://a.com|a.com>, <mailto:x@y.z|x@y.z>
            return label or url
        return f"{label} ({url})"

    def mention(m: re.Match[str]) -> str:
        return "" if m.group(1) == bot_user_id else f"@{m.group(1)}"

    out = _MENTION.sub(mention, text)
    out = _LINK.sub(link, out)
    out = _CHANNEL.sub(lambda m: f"#{m.group(1)}", out)
    out = _SPECIAL.sub(lambda m: f"@{m.group(1)}", out)
    out = _OTHER.sub("", out)
    return re.sub(r"[ \t]{2,}", " ", html.unescape(out)).strip()


def to_markdown(text: str) -> str:
    """An agent's Slack mrkdwn as the markdown subset of ``Reply.text``: ``*bold*`` →
    ``**bold**``, ``<url|label>`` → ``[label](url)``; what the customer's channel renders."""

    def link(m: re.Match[str]) -> str:
        url, label = m.group(1), m.group(2)
        if url.startswith("mailto:"):
            return label or url.removeprefix("mailto:")
        return f"[{label}]({url})" if label and label != url else url

    out = _LINK.sub(link, text)
    out = _MENTION.sub(lambda m: f"@{m.group(1)}", out)
    out = _CHANNEL.sub(lambda m: f"#{m.group(1)}", out)
    out = _SPECIAL.sub("", out)
    out = _OTHER.sub("", out)
    out = re.sub(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])", r"**\1**", out)
    out = re.sub(r"(?<![~\w])~(?=\S)([^~\n]+?)(?<=\S)~(?![~\w])", r"\1", out)
    return html.unescape(out).strip()


def event_id(body: dict[str, Any]) -> str:
    """The Events API id (the same on Slack's retries); Socket Mode envelopes carry it too."""
    return str(
        body.get("event_id")
        or body.get("event", {}).get("client_msg_id")
        or body.get("event", {}).get("ts")
        or "?"
    )
