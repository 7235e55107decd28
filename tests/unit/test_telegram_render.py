"""Telegram translation without a network: Update → Inbound, Reply → messages (HTML, splitting,
buttons, product cards)."""

from __future__ import annotations

import html
import random
from html.parser import HTMLParser
from typing import Any

import pytest
from telegram import Update

from channels import payloads
from channels.schema import Button, ChannelName, Product, Reply
from channels.telegram.parse import parse_update
from channels.telegram.render import (
    CAPTION_LIMIT,
    NO_TEXT,
    PhotoOp,
    TextOp,
    _u16,
    callback_data,
    markdown_to_html,
    product_caption,
    render_reply,
    split_html,
)
from tests.fakes.telegram import (
    callback_update,
    message_update,
    photo_update,
    sticker_update,
    text_update,
)

# --- markdown subset → HTML -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ("<script>alert('x')</script>", "&lt;script&gt;alert('x')&lt;/script&gt;"),
        ("fish & chips > 2", "fish &amp; chips &gt; 2"),
        ("**bold** and _italic_", "<b>bold</b> and <i>italic</i>"),
        ("**bold _both_**", "<b>bold <i>both</i></b>"),
        ("run `rm <x> && y`", "run <code>rm &lt;x&gt; &amp;&amp; y</code>"),
        ("`**not bold**`", "<code>**not bold**</code>"),
        (
            '[the shop](https://shop.example/?a=1&b="2")',
            '<a href="https://shop.example/?a=1&amp;b=&quot;2&quot;">the shop</a>',
        ),
        ("[**big** deal](https://x.example)", '<a href="https://x.example"><b>big</b> deal</a>'),
        ("[click](javascript:alert)", "[click](javascript:alert)"),
        ("order_id and snake_case_name", "order_id and snake_case_name"),
        ("2 * 3 ** 4", "2 * 3 ** 4"),
        ("** not bold **", "** not bold **"),
        ("line one\nline _two_", "line one\nline <i>two</i>"),
        ("", ""),
    ],
)
def test_markdown_subset_renders_as_telegram_html(md: str, expected: str) -> None:
    assert markdown_to_html(md) == expected


class _Balance(HTMLParser):
    """Checks tags balance and only Telegram's tags appear."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.ok &= tag in {"b", "i", "code", "a"}
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.ok &= bool(self.stack) and self.stack.pop() == tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check(fragment: str) -> str:
    """Assert ``fragment`` is balanced Telegram HTML; return its visible text."""
    p = _Balance()
    p.feed(fragment)
    p.close()
    assert p.ok and not p.stack, fragment
    return "".join(p.text)


def test_any_input_renders_balanced_html() -> None:
    rng = random.Random(5)
    alphabet = [
        "*",
        "**",
        "_",
        "`",
        "[",
        "]",
        "(",
        ")",
        "<",
        ">",
        "&",
        " ",
        "\n",
        "a",
        "b",
        "https://x.example",
        "é",
        "😀",
        '"',
    ]
    for _ in range(2000):
        md = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        _check(markdown_to_html(md))


# --- splitting --------------------------------------------------------------------------------


def test_short_text_is_one_message() -> None:
    assert split_html("hello") == ["hello"]
    assert split_html("") == []
    assert split_html("  \n ") == []


def test_a_long_text_splits_at_words_and_loses_nothing() -> None:
    text = ("word " * 1801)[:9000]
    parts = split_html(markdown_to_html(text))
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert "".join(parts) == text
    assert all(p.endswith(" ") for p in parts[:-1])  # cut after a space, not inside a word


def test_paragraph_breaks_are_preferred() -> None:
    para = "x" * 3000
    text = f"{para}\n\n{para}\n{para}"
    parts = split_html(text)
    assert parts[0] == para + "\n\n"
    assert "".join(parts) == text


def test_a_cut_never_breaks_a_tag_or_an_entity_and_reopens_tags() -> None:
    md = "**" + " ".join(f"<b{i}> & [l](https://x.example/{i})" for i in range(400)) + "**"
    rendered = markdown_to_html(md)
    for limit in (50, 97, 300, 4096):
        parts = split_html(rendered, limit)
        assert len(parts) > 1
        visible = []
        for part in parts:
            assert _u16(part) <= limit
            visible.append(_check(part))
            assert part.startswith("<b>") and part.endswith("</b>")
        assert "".join(visible) == _check(rendered)


def test_random_markup_splits_into_balanced_parts_within_the_limit() -> None:
    rng = random.Random(7)
    words = [
        "**bold words**",
        "_it_",
        "`c<o>de`",
        "[a](https://x.example)",
        "&",
        "<",
        "é",
        "😀",
        "plain",
        "\n",
        "\n\n",
    ]
    for _ in range(200):
        md = " ".join(rng.choice(words) for _ in range(rng.randint(50, 300)))
        rendered = markdown_to_html(md)
        limit = rng.randint(40, 400)
        parts = split_html(rendered, limit)
        assert all(_u16(p) <= limit for p in parts)
        joined = "".join(_check(p) for p in parts)
        assert joined.strip() == _check(rendered).strip()


def test_length_is_counted_in_utf16_units_as_telegram_does() -> None:
    parts = split_html("😀" * 3000)
    assert len(parts) == 2 and all(_u16(p) <= 4096 for p in parts)
    assert "".join(parts) == "😀" * 3000


def test_one_huge_word_is_cut_anywhere() -> None:
    parts = split_html("y" * 5000)
    assert [len(p) for p in parts] == [4096, 904]


# --- buttons ----------------------------------------------------------------------------------


def test_short_payloads_are_the_callback_data() -> None:
    assert callback_data("pay:yes") == ("pay:yes", False)
    assert callback_data("x" * 64) == ("x" * 64, False)


@pytest.mark.parametrize("payload", ["L" * 200, "x" * 65, "é" * 33, "~looks stored"])
def test_long_payloads_get_a_short_stable_key(payload: str) -> None:
    data, stored = callback_data(payload)
    assert stored and len(data.encode()) <= 64
    assert callback_data(payload) == (data, True)
    assert payloads.stored_key(data) is not None
    assert payloads.stored_key("pay:yes") is None


def test_buttons_are_an_inline_keyboard_under_the_last_part() -> None:
    reply = Reply(
        text="word " * 1000,
        buttons=(Button(title="Yes", payload="pay:yes"), Button(title="Long", payload="L" * 200)),
    )
    rendered = render_reply(reply)
    assert len(rendered.parts) == 2
    first, last = rendered.parts
    assert isinstance(first, TextOp) and first.keyboard is None
    assert isinstance(last, TextOp) and last.keyboard is not None
    rows = last.keyboard.inline_keyboard
    assert rows[0][0].callback_data == "pay:yes"
    long_data = rows[1][0].callback_data
    assert isinstance(long_data, str)
    key = payloads.stored_key(long_data)
    assert key is not None and rendered.stored == {key: "L" * 200}


def test_buttons_without_text_get_a_prompt() -> None:
    rendered = render_reply(Reply(buttons=(Button(title="Yes", payload="y"),)))
    [op] = rendered.parts
    assert isinstance(op, TextOp) and op.html == NO_TEXT and op.keyboard is not None


def test_an_empty_reply_sends_nothing() -> None:
    assert render_reply(Reply(text="  ")).parts == ()


# --- product cards ----------------------------------------------------------------------------


def _product(**kw: Any) -> Product:
    base: dict[str, Any] = {
        "sku": "S",
        "title": "Trail <Runner>",
        "price": 89.5,
        "currency": "EUR",
        "url": "https://shop.example/p/1",
        "image_url": "https://shop.example/1.jpg",
    }
    return Product(**{**base, **kw})


def test_a_product_is_a_photo_with_caption_and_view_button() -> None:
    [op] = render_reply(Reply(products=(_product(),))).parts
    assert isinstance(op, PhotoOp)
    assert op.photo == "https://shop.example/1.jpg"
    assert op.caption == "<b>Trail &lt;Runner&gt;</b>\n89.50 EUR"
    assert op.keyboard is not None
    [[button]] = op.keyboard.inline_keyboard
    assert (button.text, button.url) == ("View", "https://shop.example/p/1")
    assert op.fallback == TextOp(op.caption, op.keyboard)


def test_a_product_without_image_or_url_is_a_plain_text_card() -> None:
    [op] = render_reply(Reply(products=(_product(image_url=None, url=None),))).parts
    assert op == TextOp("<b>Trail &lt;Runner&gt;</b>\n89.50 EUR", None)


def test_text_comes_before_the_cards() -> None:
    ops = render_reply(Reply(text="Here", products=(_product(), _product(sku="T")))).parts
    assert [type(o) for o in ops] == [TextOp, PhotoOp, PhotoOp]


@pytest.mark.parametrize("title", ["<&>" * 600, "T" * 5000, "😀" * 900])
def test_captions_fit_1024_and_stay_valid(title: str) -> None:
    caption = product_caption(_product(title=title))
    assert _u16(caption) <= CAPTION_LIMIT
    assert caption.endswith("</b>\n89.50 EUR")
    assert "…" in _check(caption)


# --- inbound ----------------------------------------------------------------------------------


def _parse(data: dict[str, Any]) -> Any:
    return parse_update(Update.de_json(data, None))


def test_a_private_text_message_becomes_an_inbound() -> None:
    data = text_update(42, "where is my order?", update_id=777)
    inbound = _parse(data)
    assert inbound.channel == ChannelName.telegram
    assert inbound.platform_id == "777"
    assert inbound.conversation == "42"
    assert inbound.text == "where is my order?"
    assert (inbound.user.id, inbound.user.name, inbound.user.locale) == ("42", "Ada Lovelace", "en")


def test_long_text_is_cut_to_the_limit() -> None:
    update = Update.de_json(text_update(42, "x" * 5000), None)
    inbound = parse_update(update, max_text=4000)
    assert inbound is not None and len(inbound.text) == 4000


def test_a_photo_is_its_largest_size_with_the_caption_as_text() -> None:
    inbound = _parse(photo_update(42, caption="this one?"))
    assert inbound.text == "this one?"
    [a] = inbound.attachments
    assert (a.kind, a.file_id, a.size, a.mime) == ("photo", "photo-1280", 12800, "image/jpeg")


def test_a_sticker_carries_its_emoji() -> None:
    inbound = _parse(sticker_update(42))
    assert inbound.text == ""
    [a] = inbound.attachments
    assert (a.kind, a.file_id, a.name, a.mime, a.size) == (
        "sticker",
        "sticker-1",
        "👍",
        "image/webp",
        2048,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"location": {"latitude": 52.5, "longitude": 13.4}},
            {"kind": "location", "url": "geo:52.5,13.4"},
        ),
        (
            {
                "voice": {
                    "file_id": "v",
                    "file_unique_id": "v",
                    "duration": 3,
                    "mime_type": "audio/ogg",
                    "file_size": 99,
                }
            },
            {"kind": "voice", "file_id": "v", "mime": "audio/ogg", "size": 99},
        ),
        (
            {
                "document": {
                    "file_id": "d",
                    "file_unique_id": "d",
                    "file_name": "invoice.pdf",
                    "mime_type": "application/pdf",
                    "file_size": 1000,
                }
            },
            {"kind": "document", "file_id": "d", "name": "invoice.pdf", "mime": "application/pdf"},
        ),
        (
            {"audio": {"file_id": "a", "file_unique_id": "a", "duration": 3}},
            {"kind": "audio", "file_id": "a"},
        ),
        (
            {
                "video": {
                    "file_id": "m",
                    "file_unique_id": "m",
                    "width": 1,
                    "height": 1,
                    "duration": 3,
                    "mime_type": "video/mp4",
                }
            },
            {"kind": "video", "file_id": "m", "mime": "video/mp4"},
        ),
        ({"contact": {"phone_number": "+1", "first_name": "Bo"}}, {"kind": "other"}),
    ],
)
def test_attachments(content: dict[str, Any], expected: dict[str, Any]) -> None:
    [a] = _parse(message_update(42, **content)).attachments
    assert {k: getattr(a, k) for k in expected} == expected


def test_a_button_press_carries_its_data_as_payload() -> None:
    inbound = _parse(callback_update(42, "pay:yes", update_id=778))
    assert (inbound.platform_id, inbound.conversation, inbound.payload, inbound.text) == (
        "778",
        "42",
        "pay:yes",
        "",
    )


@pytest.mark.parametrize(
    "data",
    [
        message_update(-100, chat_type="group", text="hi"),
        message_update(-100, chat_type="supergroup", text="hi"),
        {"update_id": 1, "edited_message": text_update(42, "edited")["message"]},
        {
            "update_id": 2,
            "channel_post": {
                "message_id": 1,
                "date": 0,
                "text": "news",
                "chat": {"id": -5, "type": "channel"},
            },
        },
        message_update(
            42, pinned_message={"message_id": 3, "date": 0, "chat": {"id": 42, "type": "private"}}
        ),
        {
            "update_id": 3,
            "callback_query": {
                "id": "q",
                "chat_instance": "c",
                "data": "x",
                "from": {"id": 42, "is_bot": False, "first_name": "A"},
                "inline_message_id": "im",
            },
        },
    ],
    ids=["group", "supergroup", "edited", "channel-post", "service", "inline-button"],
)
def test_what_the_bot_ignores(data: dict[str, Any]) -> None:
    assert _parse(data) is None


def test_messages_from_bots_are_ignored() -> None:
    data = text_update(42, "beep")
    data["message"]["from"]["is_bot"] = True
    assert _parse(data) is None


def test_rendered_html_escapes_like_html_escape() -> None:
    s = "a<b>&c\"d'"
    assert markdown_to_html(s) == html.escape(s, quote=False)


# --- setup ------------------------------------------------------------------------------------


def _app(**env: str) -> Any:
    from gateway.app import create_app
    from gateway.settings import load_settings

    return create_app(load_settings(TELEGRAM_BOT_TOKEN="1:T", **env))


def _routes(app: Any) -> set[str]:
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def test_webhook_mode_mounts_the_route() -> None:
    from channels.telegram.route import TELEGRAM

    app = _app(TELEGRAM_WEBHOOK_SECRET="s", TELEGRAM_MODE="auto")
    assert "/telegram/webhook" in _routes(app) and not app[TELEGRAM].polling


def test_auto_mode_without_a_secret_polls() -> None:
    from channels.telegram.route import TELEGRAM

    app = _app(TELEGRAM_MODE="auto")
    assert "/telegram/webhook" not in _routes(app) and app[TELEGRAM].polling


def test_webhook_mode_without_a_secret_is_a_config_error() -> None:
    from gateway.settings import ConfigError

    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET is missing"):
        _app(TELEGRAM_MODE="webhook")


def test_a_secret_telegram_would_refuse_fails_before_set_webhook_runs() -> None:
    from gateway.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        load_settings(TELEGRAM_BOT_TOKEN="1:T", TELEGRAM_WEBHOOK_SECRET="no spaces!")
