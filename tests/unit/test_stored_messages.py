"""Messages stored by another version of omnigate (a rolling deploy) are read tolerantly:
fields this version does not know are ignored; bytes that are no message at all are refused
with a named error, so the caller can keep them as a dead letter."""

from __future__ import annotations

import json

import pytest

from channels.schema import Inbound, Outbound, Unreadable, parse_stored


def test_unknown_fields_of_a_newer_version_are_ignored_at_every_level() -> None:
    raw = json.dumps(
        {
            "channel": "web",
            "platform_id": "p1",
            "user": {"id": "ada", "pronouns": "she"},
            "conversation": "c1",
            "text": "hello",
            "attachments": [{"kind": "photo", "blurhash": "x"}],
            "priority": "high",
        }
    )
    inbound = parse_stored(Inbound, raw)
    assert (inbound.user.id, inbound.text, inbound.attachments[0].kind) == ("ada", "hello", "photo")


def test_a_reply_batch_with_new_reply_fields_is_read() -> None:
    raw = json.dumps(
        {
            "channel": "telegram",
            "conversation": "42",
            "user": {"id": "42"},
            "replies": [{"text": "hi", "buttons": [{"title": "A", "payload": "a", "style": "x"}]}],
            "first_seq": 3,
            "trace": "abc",
        }
    )
    out = parse_stored(Outbound, raw)
    assert (out.first_seq, out.replies[0].buttons[0].payload) == (3, "a")


@pytest.mark.parametrize("raw", [b"\x00\xff", b"not json", b"[]", b'{"channel": "fax"}'])
def test_bytes_that_are_no_message_are_unreadable(raw: bytes) -> None:
    with pytest.raises(Unreadable):
        parse_stored(Inbound, raw)
