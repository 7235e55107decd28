"""Slack translation and Block Kit rendering (channels.slack): pure functions, no server."""

from __future__ import annotations

import json

from channels import payloads
from channels.handoff import agent_inbound
from channels.schema import Button, ChannelName, Product, Reply, User
from channels.slack.parse import (
    conversation_of,
    is_person_message,
    parse_action,
    parse_mention,
    parse_message,
    plain_text,
    split_conversation,
    to_markdown,
)
from channels.slack.render import (
    ACTIONS_LIMIT,
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    render_reply,
    split_mrkdwn,
    to_mrkdwn,
)

BOT = "U0BOT"


def product(i: int, image: bool = True) -> Product:
    return Product(
        sku=f"SKU-{i}",
        title=f"Shoe <{i}> & co",
        price=1234.5,
        currency="EUR",
        url=f"https://shop.example/p/{i}",
        image_url=f"https://shop.example/{i}.jpg" if image else None,
    )


def test_markdown_becomes_mrkdwn_with_slack_escaping() -> None:
    assert to_mrkdwn("**Bold** & _it_ `code` <b> [Shop](https://s.example/a?x=1)") == (
        "*Bold* &amp; _it_ `code` &lt;b&gt; <https://s.example/a?x=1|Shop>"
    )


def test_text_a_person_reads_from_slack() -> None:
    text = f"<@{BOT}> hi <@U1> see <https://a.example|a.example> &amp; <mailto:x@y.io|x@y.io>"
    assert plain_text(text, BOT) == "hi @U1 see a.example & x@y.io"
    assert plain_text("<https://a.example/x|the page>") == "the page (https://a.example/x)"
    assert to_markdown("*Hi* there, see <https://a.example/x|this> &lt;3") == (
        "**Hi** there, see [this](https://a.example/x) <3"
    )


def test_a_reply_is_a_section_then_buttons() -> None:
    reply = Reply(
        text="Pick one",
        buttons=(Button(title="Yes", payload="pay:yes"), Button(title="No", payload="pay:no")),
    )
    [msg] = render_reply(reply).parts
    assert msg.text == "Pick one"
    section, actions = msg.blocks
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "Pick one"}}
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in actions["elements"]] == [
        ("og_btn_0", "pay:yes", "Yes"),
        ("og_btn_1", "pay:no", "No"),
    ]


def test_products_are_sections_with_an_image_accessory() -> None:
    reply = Reply(text="Here", products=(product(1), product(2, image=False)))
    [msg] = render_reply(reply).parts
    _, first, second = msg.blocks
    assert first["text"]["text"] == (
        "*<https://shop.example/p/1|Shoe &lt;1&gt; &amp; co>*\n1,234.50 EUR"
    )
    assert first["accessory"] == {
        "type": "image",
        "image_url": "https://shop.example/1.jpg",
        "alt_text": "Shoe <1> & co",
    }
    assert "accessory" not in second


def test_long_text_is_split_into_sections_of_at_most_3000() -> None:
    text = ("word " * 2000).strip() + "\n\n" + "x" * 7000
    chunks = split_mrkdwn(to_mrkdwn(text))
    assert all(len(c) <= SECTION_TEXT_LIMIT for c in chunks)
    assert "".join(chunks).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace(
        "\n", ""
    )
    [msg] = render_reply(Reply(text=text)).parts
    assert all(len(b["text"]["text"]) <= SECTION_TEXT_LIMIT for b in msg.blocks)
    assert len(msg.text) <= 3000


def test_a_split_never_cuts_a_link() -> None:
    text = "a" * 2990 + " [link](https://example.com/long/path) rest"
    chunks = split_mrkdwn(to_mrkdwn(text))
    assert any(c.startswith("<https://example.com/long/path|link>") for c in chunks)


def test_more_than_50_blocks_become_several_messages() -> None:
    reply = Reply(
        text="Many",
        products=tuple(product(i) for i in range(70)),
        buttons=tuple(Button(title=f"B{i}", payload=f"p{i}") for i in range(30)),
    )
    messages = render_reply(reply).parts
    assert len(messages) == 2
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    blocks = [b for m in messages for b in m.blocks]
    assert sum(1 for b in blocks if b.get("accessory")) == 70
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [ACTIONS_LIMIT, 5]
    ids = [e["action_id"] for a in actions for e in a["elements"]]
    assert len(set(ids)) == 30
    assert all(m.text.strip() for m in messages)
    assert len(json.dumps(messages[0].blocks)) < 100_000


def test_long_payloads_and_labels_fit_slack_limits() -> None:
    long_payload = "L" * 2048
    rendered = render_reply(
        Reply(text="x", buttons=(Button(title="T" * 200, payload=long_payload),))
    )
    button = rendered.parts[0].blocks[-1]["elements"][0]
    assert len(button["text"]["text"]) <= 75
    key = payloads.stored_key(button["value"])
    assert key is not None and rendered.stored[key] == long_payload


def test_an_empty_reply_still_renders() -> None:
    [msg] = render_reply(Reply(text="")).parts
    assert msg.blocks and msg.text


def test_a_dm_becomes_an_inbound() -> None:
    event = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "U1",
        "text": "hello &amp; bye",
        "ts": "1.1",
        "team": "T1",
    }
    inbound = parse_message(event, "Ev1", BOT, 4000)
    assert inbound is not None
    assert (inbound.channel, inbound.platform_id, inbound.conversation, inbound.text) == (
        ChannelName.slack,
        "Ev1",
        "D1",
        "hello & bye",
    )
    assert inbound.meta == {"channel": "D1", "team": "T1"}


def test_bots_edits_joins_and_channel_chatter_are_ignored() -> None:
    base = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "U1",
        "text": "hi",
        "ts": "1.1",
    }
    assert parse_message(base, "E", BOT, 100) is not None
    assert parse_message({**base, "bot_id": "B1"}, "E", BOT, 100) is None
    assert parse_message({**base, "user": BOT}, "E", BOT, 100) is None
    assert parse_message({**base, "subtype": "message_changed"}, "E", BOT, 100) is None
    assert parse_message({**base, "subtype": "channel_join"}, "E", BOT, 100) is None
    assert (
        parse_message({**base, "channel": "C1", "channel_type": "channel"}, "E", BOT, 100) is None
    )
    assert is_person_message({**base, "subtype": "file_share"}, BOT)


def test_a_mention_is_a_conversation_per_thread() -> None:
    event = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": f"<@{BOT}> hi",
        "ts": "5.5",
    }
    top = parse_mention(event, "E1", BOT, 100)
    assert top is not None and top.text == "hi"
    assert top.conversation == "C1/5.5" and top.meta["thread_ts"] == "5.5"
    inner = parse_mention({**event, "ts": "6.6", "thread_ts": "5.5"}, "E2", BOT, 100)
    assert inner is not None and inner.conversation == "C1/5.5"
    assert split_conversation("C1/5.5") == ("C1", "5.5")
    assert split_conversation("D1") == ("D1", None)
    assert conversation_of("D1", "7.7", direct=True) == "D1"


def test_a_button_click_becomes_a_payload_in_its_conversation() -> None:
    body = {
        "type": "block_actions",
        "user": {"id": "U1", "name": "ada"},
        "container": {"channel_id": "C1", "message_ts": "9.9", "thread_ts": "5.5"},
        "message": {"ts": "9.9", "thread_ts": "5.5"},
        "trigger_id": "tr1",
        "team": {"id": "T1"},
    }
    inbound = parse_action(body, {"value": "pay:yes"}, "pay:yes")
    assert inbound is not None
    assert (inbound.payload, inbound.conversation, inbound.platform_id) == (
        "pay:yes",
        "C1/5.5",
        "action:tr1",
    )


def test_an_agent_reply_is_queued_in_the_customers_conversation() -> None:
    agent = agent_inbound(
        "web:visitor-1", User(id="UA"), "slack-agent:Ev9", text="Hello", thread="1.2"
    )
    assert agent.conversation_key == "web:visitor-1"
    assert agent.author == "agent"
    assert agent.meta == {"agent_user": "UA", "agent_thread": "1.2"}
