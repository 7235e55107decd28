"""Telegram updates → ``Inbound``. Pure functions: no I/O, no Redis, no Bot.

``parse_update`` turns a python-telegram-bot ``Update`` into an ``Inbound`` (or None for what
the bot ignores).

What the bot answers: private chats only. Edited messages, channel posts and every group or
supergroup message are ignored — a shop's support conversation carries order details that only
their owner may see, and a group is no place for them; users who write in a group can always
open the bot in private.
"""

from __future__ import annotations

from telegram import Message, Update

from channels.schema import Attachment, ChannelName, Inbound, User

TEXT_LIMIT = 4096  # characters of one message


# --- inbound ----------------------------------------------------------------------------------


def parse_update(update: Update, max_text: int = TEXT_LIMIT) -> Inbound | None:
    """A private-chat message or button press → ``Inbound``; anything else → None.

    ``platform_id`` is the ``update_id`` (Telegram re-sends the same update on a non-2xx, so
    ingress dedupes on it); ``conversation`` is the chat id. A button press carries its raw
    ``callback_data`` as ``payload`` (a long payload's stored key: ``channels.payloads``).
    """
    if update.message is not None:
        return _from_message(update, update.message, max_text)
    query = update.callback_query
    if query is None or query.message is None or query.data is None:
        return None  # inline-mode buttons, games: not ours
    if query.message.chat.type != "private" or query.from_user.is_bot:
        return None
    return Inbound(
        channel=ChannelName.telegram,
        platform_id=str(update.update_id),
        user=_user(query.from_user.id, query.from_user.full_name, query.from_user.language_code),
        conversation=str(query.message.chat.id),
        payload=query.data,
    )


def _from_message(update: Update, msg: Message, max_text: int) -> Inbound | None:
    if msg.chat.type != "private" or msg.from_user is None or msg.from_user.is_bot:
        return None
    text = msg.text or msg.caption or ""
    attachments = attachments_of(msg)
    if not text and not attachments:
        return None  # a service message (pinned, chat photo changed, …)
    return Inbound(
        channel=ChannelName.telegram,
        platform_id=str(update.update_id),
        user=_user(msg.from_user.id, msg.from_user.full_name, msg.from_user.language_code),
        conversation=str(msg.chat.id),
        text=text[:max_text],
        attachments=attachments,
    )


def _user(user_id: int, name: str, locale: str | None) -> User:
    return User(id=str(user_id), name=name[:256] or None, locale=(locale or None) and locale[:35])


def attachments_of(msg: Message) -> tuple[Attachment, ...]:
    """The file, photo, sticker, location, voice note… of a message (at most one in Telegram).

    A photo is its largest size; a sticker's ``name`` is its emoji; a location becomes a
    ``geo:lat,lon`` URL. Kinds the schema has no name for (contact, poll, dice…) are "other".
    """
    if msg.photo:
        p = msg.photo[-1]
        return (Attachment(kind="photo", file_id=p.file_id, size=p.file_size, mime="image/jpeg"),)
    if msg.sticker:
        s = msg.sticker
        mime = (
            "video/webm"
            if s.is_video
            else "application/x-tgsticker"
            if s.is_animated
            else "image/webp"
        )
        return (
            Attachment(
                kind="sticker", file_id=s.file_id, size=s.file_size, mime=mime, name=s.emoji
            ),
        )
    if msg.location:
        loc = msg.location
        return (Attachment(kind="location", url=f"geo:{loc.latitude},{loc.longitude}"),)
    media = [
        ("voice", msg.voice),
        ("audio", msg.audio),
        ("video", msg.video),
        ("video", msg.video_note),
        ("video", msg.animation),
        ("document", msg.document),
    ]
    for kind, f in media:
        if f is not None:
            return (
                Attachment(
                    kind=kind,
                    file_id=f.file_id,
                    size=f.file_size,
                    mime=getattr(f, "mime_type", None),
                    name=getattr(f, "file_name", None),
                ),
            )
    if msg.effective_attachment is not None:
        return (Attachment(kind="other"),)
    return ()
