"""``Reply`` → Telegram messages. Pure functions: no I/O, no Redis, no Bot.

``render_reply`` turns a ``Reply`` into the list of Telegram messages that show it (``TextOp`` /
``PhotoOp``), plus the long button payloads that must be stored server-side before sending
(``callback_data`` holds at most 64 bytes; ``channels.payloads``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from channels import payloads
from channels.base import Rendered
from channels.schema import Product, Reply

TEXT_LIMIT = 4096  # characters of one message (we count UTF-16 units of the HTML: stricter)
CAPTION_LIMIT = 1024  # characters of a photo caption
CALLBACK_DATA_LIMIT = 64  # bytes of an inline button's callback_data
NO_TEXT = "Choose an option:"  # Telegram refuses buttons without a message text


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
