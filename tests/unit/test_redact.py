"""Customer data never reaches the logs: what ``gateway.redact`` takes out, and what it keeps."""

from __future__ import annotations

import json
import logging

import pytest

from channels.log_ids import bound
from gateway.logs import JsonFormatter
from gateway.redact import redact


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("write to ada.lovelace+shop@example.co.uk please", "[email]"),
        ("my card is 4242 4242 4242 4242", "[card]"),
        ("card 4111111111111111 exp 12/29", "[card]"),
        ("amex 3782 822463 10005", "[card]"),
        ("call me on +44 20 7946 0958", "[phone]"),
        ("or (555) 123-4567", "[phone]"),
        ("ship it to 221B Baker Street, London", "[address]"),
        ("new address: Hauptstraße 5, 10115 Berlin", "[address]"),
        ("1600 Pennsylvania Avenue NW", "[address]"),
    ],
)
def test_customer_data_is_redacted(said: str, kept: str) -> None:
    out = redact(said)
    assert kept in out
    for secret in ("ada.lovelace", "4242 4242", "4111111111111111", "7946", "123-4567", "Baker"):
        assert secret not in out
    assert "Hauptstraße 5" not in out and "Pennsylvania" not in out


@pytest.mark.parametrize(
    "plain",
    [
        "reply 1733100000123-0 of telegram:123456789 went ahead",  # stream and chat ids
        "order OG-12345 has 2 items, seq 17",
        "4242424242424241 fails Luhn",  # not a card number
    ],
)
def test_ids_and_plain_numbers_are_kept(plain: str) -> None:
    assert redact(plain) == plain


def test_a_log_line_is_json_with_its_conversation_and_turn() -> None:
    record = logging.LogRecord(
        "omnigate", logging.ERROR, __file__, 1, "could not answer %s", ("ada@example.com",), None
    )
    with bound(conversation="web:abc", turn="msg-1"):
        line = json.loads(JsonFormatter().format(record))
    assert line["conversation"] == "web:abc" and line["turn"] == "msg-1"
    assert line["msg"] == "could not answer [email]"
    assert line["level"] == "ERROR"
