"""The Telegram adapter: the python-telegram-bot ``Application`` of this gateway, the inbound
path (webhook and long polling alike) and the sending of one message.

Both inbound paths put each update through the same ``TelegramChannel.accept``: translate
(``channels.telegram.parse``), read a long button payload back (``channels.payloads``) and
hand to ingress, which dedupes on ``update_id``. The PTB ``Application`` starts and stops with
the aiohttp app; it has no web server of its own (``updater(None)`` in webhook mode).

Sending: one reply may be several Telegram messages (split text, product cards); the gateway's
delivery sends them one at a time at this adapter's pace (1/s per chat, 30/s per bot) and marks
each once sent, so a retried reply resumes where it stopped. PTB does not retry requests
itself (``HTTPXRequest`` makes one attempt; httpx's transport has no retries), so a send is
never doubled by the client.

Streaming: a reply being generated shows as one message that grows (``preview``: the first
checked clause is sent, later ones edit it, at the chat's pace), and the final reply's first
message is an edit of it (``replace``), keyboard and all, not a second message.
``sendMessageDraft`` (Bot API 9.3) streams drafts only in bots with forum topics enabled, so
edits are what every bot can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import warnings
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import Counter
from redis.exceptions import RedisError
from telegram import Bot, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from channels import payloads
from channels.base import ChannelHost, DeliveryFailed, Pace, Preview, Rendered, RetryLater
from channels.errors import Unavailable
from channels.schema import ChannelName, Outbound
from channels.telegram.config import TelegramConfig
from channels.telegram.parse import parse_update
from channels.telegram.render import (
    TEXT_LIMIT,
    Op,
    PhotoOp,
    TextOp,
    markdown_to_html,
    render_reply,
)

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]  # what parse_update reads; the rest is noise
PER_CHAT_PER_S = 1.0
PER_BOT_PER_S = 30.0
NETWORK_RETRY_S = 2.0
EXPIRED_BUTTON = "This button has expired; please ask again."

UNREADABLE = Counter(
    "omnigate_telegram_unreadable_updates_total", "Telegram updates answered 200 but not understood"
)


def _application(config: TelegramConfig) -> Application:
    api = config.api_url.rstrip("/")
    builder = (
        Application.builder()
        .token(config.bot_token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .connect_timeout(5)
        .read_timeout(10)
        .write_timeout(10)
        .pool_timeout(5)
    )
    if not config.polling:
        builder = builder.updater(None)
    return builder.build()


class TelegramChannel:
    """The PTB ``Application`` of this gateway, the inbound path, and the channel adapter."""

    name = ChannelName.telegram
    preview_replaces = True  # a preview edits one message to all the text so far

    def __init__(self, host: ChannelHost, config: TelegramConfig) -> None:
        self._host = host
        self._config = config
        self.polling = config.polling
        self.secret = config.webhook_secret or ""
        self.application = _application(config)
        self.bot = self.application.bot
        self._starter: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()
        self._closing = False
        if self.polling:
            self.application.add_handler(TypeHandler(Update, self._on_polled))

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise PTB (``getMe``) in the background, retrying while Telegram is
        unreachable, so the gateway serves its other channels meanwhile. The bot can send
        before that: its HTTP client exists from the start."""
        self._starter = asyncio.create_task(self._start(), name="telegram-start")

    async def _start(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.application.initialize()
                break
            except TelegramError as exc:
                log.error("Telegram getMe failed (%s); retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
        await self.application.start()
        if self.polling and self.application.updater is not None:
            await self.application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            log.info("Telegram: polling getUpdates as @%s", self.bot.username)
        else:
            log.info("Telegram: webhook mode as @%s", self.bot.username)

    async def close(self) -> None:
        """Stop polling and PTB; release the HTTP clients."""
        self._closing = True
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
            self._starter = None
        for t in list(self._acks):
            with contextlib.suppress(Exception):
                await t
        app = self.application
        with contextlib.suppress(Exception):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    # --- inbound --------------------------------------------------------------------------

    async def accept(self, update: Update) -> str:
        """Translate ``update`` and queue its turn: "queued", "duplicate" or "ignored".
        Raises ``Unavailable`` when it cannot be queued (the webhook answers 503)."""
        try:
            inbound = parse_update(update, self._config.max_text_chars)
        except Exception:
            UNREADABLE.inc()
            log.exception("could not translate Telegram update %s", update.update_id)
            return "ignored"
        if inbound is None:
            return "ignored"
        query = update.callback_query
        if inbound.payload:
            try:
                payload = await payloads.resolve(self._host.redis, inbound.payload)
            except RedisError as exc:
                raise Unavailable(f"Redis is unreachable ({exc})") from exc
            if payload is None:
                if query is not None:
                    self._answer(query.id, EXPIRED_BUTTON)
                return "ignored"
            inbound = inbound.model_copy(update={"payload": payload})
        fresh = await self._host.ingress.submit(inbound)
        if query is not None:
            self._answer(query.id)  # the platform's ack of a press: stops the button spinner
        return "queued" if fresh else "duplicate"

    def _answer(self, query_id: str, text: str | None = None) -> None:
        async def answer() -> None:
            try:
                await self.bot.answer_callback_query(query_id, text=text)
            except TelegramError as exc:  # e.g. "query is too old" on a re-sent update
                log.info("answerCallbackQuery %s: %s", query_id, exc)

        task = asyncio.create_task(answer())
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _on_polled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Polling: the same path as the webhook; getUpdates has already moved past this
        update, so keep trying while Redis is away rather than lose it."""
        delay = 0.5
        while True:
            try:
                await self.accept(update)
                return
            except Unavailable as exc:
                if self._closing:
                    log.error("shutting down: Telegram update %s was not queued", update.update_id)
                    return
                log.warning("Telegram update %s not queued yet: %s", update.update_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    # --- outbound (ChannelAdapter) ------------------------------------------------------------

    def render(self, out: Outbound, index: int) -> Rendered[Op]:
        """Reply ``index`` as Telegram messages (``channels.telegram.render.render_reply``)."""
        return render_reply(out.replies[index])

    def paces(
        self, conversation: str, *, typing: bool = False, preview: bool = False
    ) -> tuple[Pace, ...]:
        """1 message a second per chat and 30 per bot; a typing indicator takes a slot of the
        per-bot limit only, so a chat's 1/s is kept for its replies. A preview (a message
        sent or edited) counts as a message."""
        bot = Pace("bot", PER_BOT_PER_S)
        return (bot,) if typing else (Pace(f"chat:{conversation}", PER_CHAT_PER_S), bot)

    async def send(self, out: Outbound, part: Op, number: int) -> None:
        """Send one Telegram message. Raises ``RetryLater`` (429, network) or
        ``DeliveryFailed``."""
        await self._send_op(_chat_id(out.conversation), part)

    async def preview(self, p: Preview, shown: str | None) -> str | None:
        """The checked text so far as one message: sent first, then edited. Returns its
        message id."""
        chat_id = _chat_id(p.conversation)
        text = markdown_to_html(p.so_far)
        if len(text) > TEXT_LIMIT:
            return shown  # the final reply splits it; a preview stays one message
        with _translated(chat_id):
            if shown is None:
                message = await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
                return str(message.message_id)
            try:
                await self.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=int(shown), parse_mode=ParseMode.HTML
                )
            except BadRequest as exc:
                if not _not_modified(exc):
                    raise
            return shown

    async def replace(self, out: Outbound, part: Op, shown: str) -> None:
        """The first message of the final reply as an edit of the preview message ``shown``;
        a new message when the preview cannot take it (a photo, a deleted preview)."""
        chat_id = _chat_id(out.conversation)
        if isinstance(part, TextOp):
            with _translated(chat_id):
                try:
                    await self.bot.edit_message_text(
                        part.html,
                        chat_id=chat_id,
                        message_id=int(shown),
                        parse_mode=ParseMode.HTML,
                        reply_markup=part.keyboard,
                    )
                    return
                except BadRequest as exc:
                    if _not_modified(exc):
                        return
                    if _chat_gone(exc):
                        raise
                    log.warning("Telegram refused to edit preview %s (%s); sending", shown, exc)
        await self._send_op(chat_id, part)

    async def _send_op(self, chat_id: int, op: Op) -> None:
        with _translated(chat_id):
            if isinstance(op, PhotoOp):
                try:
                    await self.bot.send_photo(
                        chat_id,
                        op.photo,
                        caption=op.caption,
                        parse_mode=ParseMode.HTML,
                        reply_markup=op.keyboard,
                    )
                    return
                except BadRequest as exc:
                    if _chat_gone(exc):
                        raise
                    log.warning("Telegram refused photo %s (%s); sending text", op.photo, exc)
                    op = op.fallback
            await self._send_text(chat_id, op)

    async def _send_text(self, chat_id: int, op: TextOp) -> None:
        try:
            await self.bot.send_message(
                chat_id, op.html, parse_mode=ParseMode.HTML, reply_markup=op.keyboard
            )
        except BadRequest as exc:
            if "can't parse entities" not in str(exc).lower():
                raise
            # The renderer balances its tags; should Telegram still refuse the markup, the
            # customer gets the words without it rather than nothing.
            log.error("Telegram refused our HTML (%s); sending plain text", exc)
            await self.bot.send_message(chat_id, _plain(op.html), reply_markup=op.keyboard)

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """``sendChatAction typing`` (shows ~5 s; delivery repeats it every ~4 s of a turn)."""
        chat_id = _chat_id(conversation)
        with contextlib.suppress(TelegramError):
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)


@contextlib.contextmanager
def _translated(chat_id: int) -> Iterator[None]:
    """Telegram's errors as the delivery loop's: ``RetryLater`` or ``DeliveryFailed``."""
    try:
        yield
    except RetryAfter as exc:
        wait = _seconds(exc)
        reason = f"Telegram flood control for chat {chat_id}"
        raise RetryLater(wait, reason, hold=f"chat:{chat_id}") from exc
    except (Forbidden, ChatMigrated) as exc:
        raise DeliveryFailed(f"chat {chat_id}: {exc}") from exc
    except BadRequest as exc:
        raise DeliveryFailed(f"chat {chat_id}: {exc}") from exc
    except TimedOut as exc:
        # Ambiguous: Telegram may have the message. Retrying risks a double, dropping
        # risks a loss; the design says never lose an acknowledged reply.
        raise RetryLater(NETWORK_RETRY_S, f"Telegram timed out: {exc}") from exc
    except NetworkError as exc:
        raise RetryLater(NETWORK_RETRY_S, f"Telegram unreachable: {exc}") from exc


def _not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in str(exc).lower()


def _chat_id(conversation: str) -> int:
    try:
        return int(conversation)
    except ValueError:
        raise DeliveryFailed(f"{conversation!r} is not a Telegram chat id") from None


def _chat_gone(exc: BadRequest) -> bool:
    msg = str(exc).lower()
    return "chat not found" in msg or "user not found" in msg


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 moves retry_after from int to timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _plain(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^<>]+>", "", html_text))


async def register_webhook(config: TelegramConfig, url: str, secret: str) -> None:
    """Register ``url`` as the bot's webhook, with ``secret`` as the token Telegram sends back
    on every update. Raises ``TelegramError`` when Telegram refuses."""
    api = config.api_url.rstrip("/")
    async with Bot(config.bot_token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot") as bot:
        await bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
