"""Who wrote in which conversation, and ``omnigate forget``: erasing a person everywhere.

A turn records its conversation under the author's platform identity (``og:person:<channel>:
<user id>``) and under the email the conversation verified (``og:person-email:<email>``).
``forget`` takes a user id (``telegram:42``, or a bare id tried on every channel), a
conversation key, or an email, and erases each of those conversations: memory (history, slots,
handoff record), the web chat log, waiting and in-flight messages, reply sequence and delivery
marks, handoff thread links, the person's pending replies in the reply stream, their
conversation records (``gateway.records``: the satisfaction answer and the redacted questions
the bot could not answer) and their feedback examples (``gateway.feedback``: their words with
the intent they meant, for ``omnigate learn``). Nothing else of omnigate holds a person's
words: dedupe marks hold only message ids. (A model ``omnigate learn`` installed keeps what it
learnt from them; the next ``learn`` retrains without them.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from brain.types import Session
from channels import constants as K
from channels.schema import ChannelName, Inbound
from gateway import feedback, records

CHANNELS = tuple(c.value for c in ChannelName)


def remember(r: redis.Redis, inbound: Inbound, session: Session, ttl_s: int) -> None:
    """Record that ``inbound``'s author (and the email the session verified) wrote in its
    conversation. Agents and omnigate's own system messages are not customers."""
    if inbound.author != "customer":
        return
    conv = inbound.conversation_key
    keys = [f"{K.PERSON}{inbound.channel.value}:{inbound.user.id}"]
    email = session.slots.get("verified_email")
    if isinstance(email, str) and email:
        keys.append(K.PERSON_EMAIL + email.lower())
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.sadd(key, conv)
        pipe.expire(key, ttl_s)
    pipe.execute()


@dataclass
class Forgotten:
    """What ``forget`` erased."""

    conversations: list[str] = field(default_factory=list)
    keys_deleted: int = 0
    replies_deleted: int = 0


def forget(r: redis.Redis, who: str) -> Forgotten:
    """Erase every conversation of ``who`` (user id, ``channel:user id``, conversation key,
    or email) on every channel."""
    index_keys, convs = _conversations_of(r, who.strip())
    done = Forgotten(conversations=sorted(convs))
    for conv in convs:
        done.keys_deleted += _erase(r, conv)
    done.replies_deleted = _erase_replies(r, convs)
    done.keys_deleted += int(r.delete(*index_keys)) if index_keys else 0
    done.keys_deleted += _unindex(r, convs)
    done.keys_deleted += records.forget(r, convs)
    done.keys_deleted += feedback.forget(r, convs)
    return done


def _unindex(r: redis.Redis, convs: set[str]) -> int:
    """Take the erased conversations out of every other identity's index (the same person on
    another platform, found by email), deleting the sets left empty."""
    if not convs:
        return 0
    emptied = 0
    for key in r.scan_iter(match=K.PERSON + "*", count=500):
        r.srem(key, *convs)
        if not r.scard(key):
            emptied += int(r.delete(key))
    return emptied


def _conversations_of(r: redis.Redis, who: str) -> tuple[list[str], set[str]]:
    if "@" in who:
        email = who.lower()
        index_keys = [K.PERSON_EMAIL + email]
        convs = _members(r, index_keys[0])
        # Sessions from before the index, or whose index expired first: look inside them.
        convs |= {conv for conv, session in _sessions(r) if _mentions_email(session, email)}
        return index_keys, convs
    channel, _, rest = who.partition(":")
    ids = [(channel, rest)] if channel in CHANNELS and rest else [(c, who) for c in CHANNELS]
    index_keys = [f"{K.PERSON}{c}:{uid}" for c, uid in ids]
    convs = set()
    for key in index_keys:
        convs |= _members(r, key)
    # A conversation key named directly, and the channels whose conversation is the user
    # (Telegram private chats, /api/chat users, web visitors).
    for c, uid in ids:
        if r.exists(K.SESSION + f"{c}:{uid}", K.WEB_LOG + f"{c}:{uid}", K.INBOX + f"{c}:{uid}"):
            convs.add(f"{c}:{uid}")
    return index_keys, convs


def _erase(r: redis.Redis, conv: str) -> int:
    thread = r.get(K.AGENT_THREAD_OF + conv)
    keys = [
        K.SESSION + conv,
        K.WEB_LOG + conv,
        K.INBOX + conv,
        K.PROCESSING + conv,
        K.SEQ + conv,
        K.DELIVERED + conv,
        K.AGENT_THREAD_OF + conv,
    ]
    if thread is not None:
        keys.append(K.AGENT_THREAD + _text(thread))
    pipe = r.pipeline(transaction=True)
    pipe.delete(*keys)
    pipe.srem(K.ACTIVE, conv)
    pipe.srem(K.HANDOFF_OPEN, conv)
    pipe.zrem(K.QUIET, conv)  # its quiet-period notice carries the person's user details
    pipe.hdel(K.QUIET_ARGS, conv)
    return int(pipe.execute()[0])


def _erase_replies(r: redis.Redis, convs: set[str]) -> int:
    """Replies to these conversations (and the agents' console messages about them) still in
    the reply stream: undelivered ones are dropped, as the person asked."""
    doomed: list[bytes] = []
    entries: Any = r.xrange(K.REPLY_STREAM)
    for entry_id, fields in entries:
        try:
            data: dict[str, Any] = json.loads(fields[b"data"])
        except (KeyError, ValueError):
            continue
        conv = f"{data.get('channel')}:{data.get('conversation')}"
        if conv in convs or (data.get("meta") or {}).get("handoff_for") in convs:
            doomed.append(entry_id)
    if not doomed:
        return 0
    pipe = r.pipeline(transaction=True)
    pipe.xack(K.REPLY_STREAM, K.REPLY_GROUP, *doomed)
    pipe.xdel(K.REPLY_STREAM, *doomed)
    try:
        return int(pipe.execute()[1])
    except redis.ResponseError:  # no consumer group yet: nothing was read
        return int(r.xdel(K.REPLY_STREAM, *doomed))


def _sessions(r: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for key in r.scan_iter(match=K.SESSION + "*", count=500):
        raw = r.get(key)
        try:
            out.append((_text(key)[len(K.SESSION) :], json.loads(raw) if raw else {}))
        except ValueError:
            continue
    return out


def _mentions_email(session: dict[str, Any], email: str) -> bool:
    slots = session.get("slots") or {}
    handoff = session.get("handoff") or {}
    known = (slots.get("verified_email"), handoff.get("email"))
    return email in {str(v).lower() for v in known if v}


def _members(r: redis.Redis, key: str) -> set[str]:
    return {_text(m) for m in r.smembers(key)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
