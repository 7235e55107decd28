"""The one message model of omnigate: every platform's events become an ``Inbound``; every
answer of the brain is a list of ``Reply``; an ``Outbound`` carries them back to a channel."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError


def _now() -> datetime:
    return datetime.now(UTC)


class ChannelName(StrEnum):
    """Where a customer writes from. ``api`` is the plain HTTP ``POST /api/chat`` route."""

    telegram = "telegram"
    slack = "slack"
    web = "web"
    api = "api"


class ConversationAddress(NamedTuple):
    """Where a conversation lives: its channel and the platform's conversation id. Its key,
    ``channel:conversation``, names the conversation everywhere (Redis keys, tasks, logs)."""

    channel: ChannelName
    conversation: str

    def key(self) -> str:
        """``channel:conversation``."""
        return f"{self.channel.value}:{self.conversation}"

    @classmethod
    def parse(cls, key: str) -> ConversationAddress:
        """The address a ``key()`` names (the conversation id may itself hold colons)."""
        channel, sep, conversation = key.partition(":")
        if not sep or not conversation:
            raise ValueError(f"{key!r} is not a conversation key (channel:conversation)")
        return cls(ChannelName(channel), conversation)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(_Model):
    """The customer as the platform names them."""

    id: str = Field(min_length=1, max_length=256)
    name: str | None = Field(None, max_length=256)
    locale: str | None = Field(None, max_length=35)


class Attachment(_Model):
    """A file, photo, sticker, location or voice note the customer sent."""

    kind: Literal["photo", "document", "sticker", "location", "voice", "audio", "video", "other"]
    url: str | None = None
    file_id: str | None = None
    name: str | None = None
    size: int | None = Field(None, ge=0)
    mime: str | None = None


class Inbound(_Model):
    """One customer message, normalised."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    channel: ChannelName
    platform_id: str = Field(min_length=1, max_length=256)
    user: User
    conversation: str = Field(min_length=1, max_length=512)
    text: str = ""
    payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime = Field(default_factory=_now)
    # Who speaks: the customer; an agent answering them from the agents' console; or omnigate
    # itself (the handoff timeout). Agents' and system messages are queued in the customer's
    # conversation, so they are handled in order with the customer's own.
    author: Literal["customer", "agent", "system"] = "customer"
    # Platform details the adapter needs to answer in place (e.g. a Slack thread_ts).
    meta: dict[str, str] = Field(default_factory=dict)

    @property
    def conversation_key(self) -> str:
        """The key that names this conversation everywhere: ``channel:conversation``."""
        return ConversationAddress(self.channel, self.conversation).key()

    @property
    def dedupe_key(self) -> str:
        """The platform's own identity of this message."""
        return f"{self.channel.value}:{self.platform_id}"


class Button(_Model):
    """A quick reply; clicking it sends ``payload`` back as the next message."""

    title: str = Field(min_length=1, max_length=256)
    payload: str = Field(min_length=1, max_length=2048)


class Product(_Model):
    """A product card."""

    sku: str
    title: str
    price: float
    currency: str
    url: str | None = None
    image_url: str | None = None


class Reply(_Model):
    """One bot message. ``text`` is a markdown subset: **bold**, _italic_, `code`, [links](url)
    and line breaks; each channel renders it in its own format."""

    text: str = ""
    buttons: tuple[Button, ...] = ()
    products: tuple[Product, ...] = ()
    handoff: bool = False


class Outbound(_Model):
    """Replies on their way back to one conversation of one channel.

    ``first_seq`` numbers the replies within the conversation: reply ``i`` has sequence
    number ``first_seq + i``. It is 0 until the worker's commit script numbers them
    (``workers.turn_store``), so the numbers follow the order of committed turns.
    """

    channel: ChannelName
    conversation: str
    user: User
    in_reply_to: str | None = None  # Inbound.id
    replies: tuple[Reply, ...]
    first_seq: int = Field(0, ge=0)
    meta: dict[str, str] = Field(default_factory=dict)
    # "bot" (the brain), "agent" (a human in the agents' console), "system" (notices).
    author: Literal["bot", "agent", "system"] = "bot"
    # The ``reply_id`` of the preview that showed ``replies[0]`` while it was generated (the
    # delta frames, the message a Telegram or Slack preview grew in): its final, checked
    # text replaces the preview. None when nothing streamed.
    streamed: str | None = Field(None, max_length=256)

    @property
    def conversation_key(self) -> str:
        """``channel:conversation``, as ``Inbound.conversation_key``."""
        return ConversationAddress(self.channel, self.conversation).key()


# --- reading what another version stored ---------------------------------------------------

M = TypeVar("M", bound=BaseModel)


class Unreadable(ValueError):
    """Stored bytes that are not a message of this schema, even ignoring unknown fields."""


def parse_stored(model: type[M], raw: bytes | str) -> M:
    """``model`` from JSON another version of omnigate may have written (a rolling deploy):
    fields this version does not know are ignored; a missing or bad known field is
    ``Unreadable``. The models themselves stay strict, so our own code cannot misspell one."""
    try:
        data = json.loads(raw)
        return model.model_validate(_known(model, data))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the message"
        raise Unreadable(f"not a stored {model.__name__}: {where}: {err['msg']}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise Unreadable(f"not a stored {model.__name__}: {exc}") from None


def _known(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    kept = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in data:
            kept[key] = _prune(info.annotation, data[key])
    return kept


def _prune(annotation: Any, value: Any) -> Any:
    for nested in _models_in(annotation):
        if isinstance(value, dict):
            return _known(nested, value)
        if isinstance(value, list):
            return [_known(nested, v) for v in value]
    return value


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]
