"""The message schema: validation and the JSON round trip every hop relies on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from channels.schema import (
    Attachment,
    Button,
    ChannelName,
    ConversationAddress,
    Inbound,
    Outbound,
    Product,
    Reply,
    User,
)


def test_inbound_survives_a_json_round_trip() -> None:
    msg = Inbound(
        channel="telegram",
        platform_id="1001",
        user=User(id="42", name="Ada", locale="en"),
        conversation="42",
        text="where is my order?",
        attachments=(Attachment(kind="photo", file_id="AgAD", mime="image/jpeg", size=1234),),
        meta={"thread_ts": "1.2"},
    )
    assert Inbound.model_validate_json(msg.model_dump_json()) == msg
    assert msg.conversation_key == "telegram:42"
    assert msg.dedupe_key == "telegram:1001"


def test_outbound_numbers_its_replies_from_first_seq() -> None:
    out = Outbound(
        channel="web",
        conversation="s1",
        user=User(id="s1"),
        replies=(Reply(text="a"), Reply(text="b", buttons=(Button(title="Yes", payload="y"),))),
        first_seq=7,
    )
    again = Outbound.model_validate_json(out.model_dump_json())
    assert again == out and again.first_seq == 7 and len(again.replies) == 2


def test_reply_json_has_exactly_the_design_fields() -> None:
    reply = Reply(
        text="Here",
        products=(
            Product(sku="S", title="T", price=1.5, currency="EUR", url=None, image_url=None),
        ),
    )
    assert set(reply.model_dump()) == {"text", "buttons", "products", "handoff"}
    assert set(reply.model_dump()["products"][0]) == {
        "sku",
        "title",
        "price",
        "currency",
        "url",
        "image_url",
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"channel": "fax"},
        {"platform_id": ""},
        {"user": {"id": ""}},
        {"attachments": [{"kind": "hologram"}]},
        {"unexpected": 1},
    ],
)
def test_inbound_rejects_bad_fields(bad: dict[str, object]) -> None:
    base: dict[str, object] = {
        "channel": "web",
        "platform_id": "p",
        "user": {"id": "u"},
        "conversation": "c",
    }
    with pytest.raises(ValidationError):
        Inbound.model_validate({**base, **bad})


def test_a_conversation_key_names_its_channel_and_conversation() -> None:
    address = ConversationAddress(ChannelName.slack, "C01/1700000000.0001")
    assert address.key() == "slack:C01/1700000000.0001"
    assert ConversationAddress.parse(address.key()) == address


def test_a_conversation_id_may_hold_colons() -> None:
    assert ConversationAddress.parse("web:a:b") == ConversationAddress(ChannelName.web, "a:b")


@pytest.mark.parametrize("key", ["telegram", "telegram:", "fax:42"])
def test_a_malformed_conversation_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        ConversationAddress.parse(key)


def test_a_platform_message_is_the_customers_unless_said_otherwise() -> None:
    msg = Inbound(channel="web", platform_id="m1", user=User(id="v"), conversation="v")
    assert msg.author == "customer"
