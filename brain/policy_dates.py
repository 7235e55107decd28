"""Dates in a shop's policy: a period such as "within 30 days of delivery" read from the
shop's own passage text (never written in code), and the deadlines it sets.

A period counts calendar days unless the passage says working days (Monday to Friday; public
holidays are not known to the brain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15,
    "twenty": 20, "twenty-one": 21, "twenty-eight": 28, "thirty": 30, "sixty": 60,
    "ninety": 90, "a": 1, "an": 1,
}  # fmt: skip
_NUMBER = r"(\d{1,3}|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"
_PERIOD = re.compile(
    rf"\b{_NUMBER}[\s-]+(working[\s-]+|business[\s-]+|calendar[\s-]+)?(day|week|month)s?\b",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# A sentence about sending things back (not, say, how long a refund takes).
_RETURN_WORDS = re.compile(r"\breturn|\b(send|sent|bring|take)\w*(\s+\w+){0,3}\s+back\b", re.I)
_REFUND_ONLY = re.compile(r"\brefund(ed|s)? (you )?within\b|\bwe refund\b", re.I)


@dataclass(frozen=True)
class Period:
    """A length of time a policy states: ``count`` days, working days or calendar days."""

    days: int
    working: bool = False

    def end(self, start: date) -> date:
        """The last day of the period that starts the day after ``start``."""
        if not self.working:
            return start + timedelta(days=self.days)
        day, left = start, self.days
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day

    def __str__(self) -> str:
        return f"{self.days} {'working ' if self.working else ''}days"


def read_period(text: str) -> Period | None:
    """The first length of time in ``text`` ("14 days", "two weeks", "30 working days"),
    or None when it states none. Weeks count 7 days, months 30."""
    m = _PERIOD.search(text)
    if m is None:
        return None
    raw = m.group(1).lower()
    count = int(raw) if raw.isdigit() else _WORD_NUMBERS[raw]
    unit = m.group(3).lower()
    working = bool(m.group(2)) and m.group(2).lower().startswith(("working", "business"))
    days = count * {"day": 1, "week": 7, "month": 30}[unit]
    return Period(days, working=working and unit == "day")


def read_return_period(text: str) -> Period | None:
    """The return period a returns passage states: the first length of time in a sentence
    about sending items back ("You can return any item within 30 days of delivery"), or None.
    Sentences only about refund times ("we refund within 5 days") are passed over."""
    for sentence in _SENTENCE.split(text):
        if _RETURN_WORDS.search(sentence) and not _REFUND_ONLY.search(sentence):
            period = read_period(sentence)
            if period is not None:
                return period
    return None


def days_between(earlier: date, later: date) -> int:
    """Calendar days from ``earlier`` to ``later`` (negative when ``later`` is earlier)."""
    return (later - earlier).days


def is_late(eta: date | None, today: date) -> bool:
    """An expected delivery date that has passed."""
    return eta is not None and eta < today
