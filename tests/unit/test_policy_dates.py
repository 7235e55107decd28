"""Return periods read from a shop's own passage text, and the dates they set."""

from __future__ import annotations

from datetime import date

import pytest

from brain.policy_dates import Period, is_late, read_period, read_return_period


@pytest.mark.parametrize(
    ("passage", "period"),
    [
        (
            "You can return any item within 30 days of delivery for a full refund.",
            Period(30),
        ),
        (
            "Changed your mind? You have 14 days from the day your parcel was delivered to "
            "send an item back for a refund, whatever the reason.",
            Period(14),
        ),
        ("Items may be sent back within two weeks of delivery.", Period(14)),
        ("Returns are accepted for 28 working days after delivery.", Period(28, working=True)),
        ("You can bring it back to any store within one month.", Period(30)),
    ],
)
def test_the_return_period_is_read_from_the_passage(passage: str, period: Period) -> None:
    assert read_return_period(passage) == period


def test_a_refund_time_in_the_same_passage_is_not_the_return_period() -> None:
    passage = (
        "We refund within 5 working days of receiving your parcel. "
        "Unworn items can be returned within 60 days."
    )
    assert read_return_period(passage) == Period(60)


def test_a_passage_without_a_period_gives_none() -> None:
    assert read_return_period("Print the prepaid label and drop the parcel off.") is None
    assert read_return_period("Returns are free. Orders ship within 2 days.") is None


def test_calendar_and_working_day_deadlines() -> None:
    delivered = date(2025, 3, 7)  # a Friday
    assert Period(14).end(delivered) == date(2025, 3, 21)
    assert Period(5, working=True).end(delivered) == date(2025, 3, 14)  # skips the weekend
    assert str(Period(30)) == "30 days"
    assert str(Period(5, working=True)) == "5 working days"


def test_a_period_in_words() -> None:
    assert read_period("allow three weeks") == Period(21)


def test_an_order_is_late_only_after_its_expected_date() -> None:
    today = date(2025, 3, 10)
    assert is_late(date(2025, 3, 4), today)
    assert not is_late(date(2025, 3, 10), today)
    assert not is_late(None, today)
