"""Grounding: an LLM reply that adds or changes a fact is refused."""

from __future__ import annotations

import pytest

from brain.grounding import Facts, check

ORDER = Facts(
    "Order OG-10231 has shipped on 2025-02-03 with DHL; tracking number JD01460894152528. "
    "Expected delivery: 2025-03-04. Total: 249.95 EUR.",
    required=["OG-10231", "shipped"],
)


@pytest.mark.parametrize(
    "reply",
    [
        "Good news: order OG-10231 has shipped with DHL (tracking JD01460894152528).",
        "OG-10231 has shipped and should be with you on March 4.",
        "Your order OG-10231 has shipped; the total was 249,95 EUR.",
    ],
)
def test_faithful_rewordings_pass(reply: str) -> None:
    assert check(reply, ORDER).ok


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("Order OG-10231 was delivered yesterday.", "status"),
        ("Order OG-10232 has shipped.", "OG-10232"),
        ("OG-10231 has shipped, tracking JD01460894152529.", "JD01460894152529"),
        ("OG-10231 has shipped and arrives on 2025-03-05.", "2025-03-05"),
        ("OG-10231 has shipped and arrives on March 6th.", "date"),
        ("OG-10231 has shipped. Total: 199.99 EUR.", "199.99"),
        ("OG-10231 has shipped, see https://track.example/x", "url"),
        ("OG-10231 has shipped; write to boss@shop.example", "email"),
        ("OG-10231 has shipped and you get a 10 EUR voucher.", "promise"),
        ("Your parcel is on its way with DHL.", "dropped"),
        ("OG-10231 has shipped, SKU RUN-999 included.", "RUN-999"),
        ("", "empty"),
    ],
)
def test_added_or_changed_facts_fail(reply: str, problem: str) -> None:
    verdict = check(reply, ORDER)
    assert not verdict.ok
    assert any(problem in p for p in verdict.problems), verdict.problems


def test_small_talk_without_facts() -> None:
    facts = Facts("You're welcome! Is there anything else I can help you with?")
    assert check("My pleasure! Anything else I can do for you?", facts).ok
    assert not check("Happy to help! Call us on 0800 123 456.", facts).ok


def test_may_is_not_a_month() -> None:
    facts = Facts("You can return any item within 30 days of delivery.", required=["30"])
    assert check("You may return any item within 30 days of delivery.", facts).ok
