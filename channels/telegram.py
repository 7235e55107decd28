"""Telegram ↔ schema translation and rendering. Pure functions: no I/O, no Redis, no Bot.

Inbound, ``parse_update`` turns a python-telegram-bot ``Update`` into an ``Inbound`` (or None
for what the bot ignores). Outbound, ``render_reply`` turns a ``Reply`` into the list of
Telegram messages that show it (``TextOp`` / ``PhotoOp``), plus the long button payloads that
must be stored server-side before sending (``callback_data`` holds at most 64 bytes).

What the bot answers: private chats only. Edited messages, channel posts and every group or
supergroup message are ignored — a shop's support conversation carries order details that only
their owner may see, and a group is no place for them; users who write in a group can always
open the bot in private.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from channels import payloads
from channels.base import Rendered
from channels.schema import Attachment, ChannelName, Inbound, Product, Reply, User

TEXT_LIMIT = 4096  # characters of one message (we count UTF-16 units of the HTML: stricter)
CAPTION_LIMIT = 1024  # characters of a photo caption
CALLBACK_DATA_LIMIT = 64  # bytes of an inline button's callback_data
NO_TEXT = "Choose an option:"  # Telegram refuses buttons without a message text


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


# --- outbound ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextOp:
    """One ``sendMessage`` (HTML parse mode)."""

    html: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True)
class PhotoOp:
    """One ``sendPhoto`` with an HTML caption; ``fallback`` is sent instead when Telegram
    cannot fetch the image."""

    photo: str
    caption: str
    keyboard: InlineKeyboardMarkup | None
    fallback: TextOp


Op = TextOp | PhotoOp


def render_reply(reply: Reply) -> Rendered[Op]:
    """Text (split at 4096), its buttons under the last part, then one card per product."""
    stored: dict[str, str] = {}
    keyboard = None
    if reply.buttons:
        rows = []
        for b in reply.buttons:
            data, long_payload = callback_data(b.payload)
            key = payloads.stored_key(data) if long_payload else None
            if key is not None:
                stored[key] = b.payload
            rows.append([InlineKeyboardButton(b.title, callback_data=data)])
        keyboard = InlineKeyboardMarkup(rows)
    parts = split_html(markdown_to_html(reply.text))
    if not parts and keyboard is not None:
        parts = [html.escape(NO_TEXT)]
    ops: list[Op] = [TextOp(p) for p in parts]
    if keyboard is not None:
        ops[-1] = TextOp(parts[-1], keyboard)
    ops.extend(product_op(p) for p in reply.products)
    return Rendered(tuple(ops), stored)


def callback_data(payload: str) -> tuple[str, bool]:
    """The ``callback_data`` for a button payload, and whether the payload must be stored
    (over 64 bytes: ``channels.payloads``)."""
    return payloads.button_value(payload, CALLBACK_DATA_LIMIT)


def product_op(p: Product) -> Op:
    """A product card: the photo with title and price, and a "View" button to its page."""
    keyboard = None
    if p.url and p.url.startswith(("https://", "http://")):
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("View", url=p.url)]])
    caption = product_caption(p)
    text = TextOp(caption, keyboard)
    if not p.image_url:
        return text
    return PhotoOp(p.image_url, caption, keyboard, text)


def product_caption(p: Product, limit: int = CAPTION_LIMIT) -> str:
    """``<b>title</b>`` and ``price currency`` on the next line, the title cut to fit."""
    price = html.escape(f"{p.price:.2f} {p.currency}")
    room = limit - _u16(f"<b></b>\n{price}")
    title = html.escape(p.title)
    if _u16(title) > room:
        cut = ""
        for ch in p.title:
            if _u16(html.escape(cut + ch)) > room - 1:
                break
            cut += ch
        title = html.escape(cut) + "…"
    return f"<b>{title}</b>\n{price}"


# --- markdown subset → Telegram HTML ------------------------------------------------------------

_INLINE = re.compile(
    r"(?P<code>`(?P<ctext>[^`\n]+)`)"
    r"|(?P<link>\[(?P<ltext>[^\]\n]+)\]\((?P<url>[^()\s]+)\))"
    r"|(?P<bold>\*\*(?=\S)(?P<btext>.+?)(?<=\S)\*\*)"
    r"|(?P<italic>(?<!\w)_(?=\S)(?P<itext>.+?)(?<=\S)_(?!\w))"
)
_SAFE_SCHEMES = ("https://", "http://", "tg://", "mailto:")


def markdown_to_html(text: str) -> str:
    """Render the reply markdown subset — **bold**, _italic_, `code`, [text](url) — as Telegram
    HTML; everything else is escaped, so ``<script>`` stays text. Tags always balance."""
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos : m.start()], quote=False))
        pos = m.end()
        if m.group("code"):
            out.append(f"<code>{html.escape(m.group('ctext'), quote=False)}</code>")
        elif m.group("link"):
            url, label = m.group("url"), markdown_to_html(m.group("ltext"))
            if url.lower().startswith(_SAFE_SCHEMES):
                out.append(f'<a href="{html.escape(url, quote=True)}">{label}</a>')
            else:  # javascript: and friends stay literal text
                out.append(html.escape(m.group(0), quote=False))
        elif m.group("bold"):
            out.append(f"<b>{markdown_to_html(m.group('btext'))}</b>")
        else:
            out.append(f"<i>{markdown_to_html(m.group('itext'))}</i>")
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


# --- splitting --------------------------------------------------------------------------------

_ATOM = re.compile(r"<[^<>]+>|&#?\w+;|.", re.S)
_TAG = re.compile(r"<(/?)(\w+)")


def _u16(s: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le")) // 2


def _visible(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^<>]+>", "", html_text))


def split_html(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut Telegram HTML into messages of at most ``limit`` UTF-16 units.

    Cuts at a paragraph break, else a line break (each only if the part is at least half
    full), else after a space, else anywhere between two characters — never inside a tag or an
    entity. Tags open at a cut are closed at the end of the part and reopened at the start of
    the next. No character is lost: the parts' visible text joined is the original's.
    """
    if _u16(text) <= limit:
        return [text] if _visible(text).strip() else []
    atoms = _ATOM.findall(text)
    parts: list[str] = []
    stack: list[tuple[str, str]] = []  # open tags: (name, opening tag)
    i = 0
    while i < len(atoms):
        opener = "".join(tag for _, tag in stack)
        size = _u16(opener)
        cur = list(stack)
        cuts: dict[str, tuple[int, list[tuple[str, str]], int]] = {}
        j = i
        while j < len(atoms):
            nxt = _push(cur, atoms[j])
            if size + _u16(atoms[j]) + _u16(_closers(nxt)) > limit:
                break
            size += _u16(atoms[j])
            cur = nxt
            j += 1
            kind = (
                "para"
                if atoms[j - 1] == "\n" and j - 2 >= i and atoms[j - 2] == "\n"
                else "line"
                if atoms[j - 1] == "\n"
                else "word"
                if atoms[j - 1] == " "
                else ""
            )
            if kind:
                cuts[kind] = (j, cur, size)
        if j == i:
            raise ValueError(f"limit {limit} is too small for {atoms[i]!r}")
        end, end_stack = j, cur
        if j < len(atoms):
            for kind in ("para", "line", "word"):
                if kind in cuts and (kind == "word" or cuts[kind][2] * 2 >= limit):
                    end, end_stack, _ = cuts[kind]
                    break
        part = opener + "".join(atoms[i:end]) + _closers(end_stack)
        if _visible(part).strip():
            parts.append(part)
        stack, i = end_stack, end
    return parts


def _push(stack: list[tuple[str, str]], atom: str) -> list[tuple[str, str]]:
    m = _TAG.match(atom) if atom.startswith("<") else None
    if m is None:
        return stack
    closing, name = m.groups()
    if not closing:
        return [*stack, (name, atom)]
    for k in range(len(stack) - 1, -1, -1):
        if stack[k][0] == name:
            return stack[:k]
    return stack


def _closers(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))
