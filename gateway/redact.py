"""Customer data taken out of text bound for logs: email addresses, phone numbers, card-like
numbers and street addresses become ``[email]``, ``[phone]``, ``[card]``, ``[address]``.

Patterns, not understanding: they err towards redacting. Bare digit runs shorter than a card
(chat ids, update ids) are left alone, so logs can still be matched with platform records; a
phone number is recognised by a leading ``+`` or the grouping people write numbers with.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits, run together or in the groups cards are printed in (4242 4242 4242 4242,
# 3782 822463 10005), that pass Luhn. Not a Redis stream id (1733100000123-0).
_CARD = re.compile(
    r"(?<![\d-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{5})"
    r"(?![\d-])"
)
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}(?:[ ().-]*\d){6,14}"  # +44 20 7946 0958, +1 (555) 123-4567, +4915112345678
    r"|\(?\d{2,5}\)?[ .-]\d{3,4}[ .-]\d{3,4}"  # 020 7946 0958, (555) 123-4567, 555-123-4567
    r")(?!\w)"
)
_STREET_WORDS = (
    "street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|"
    "square|sq|terrace|close|crescent|parkway|pkwy|highway|hwy|row|walk|hill|gardens"
)
_ADDRESS = re.compile(
    # 221B Baker Street, 10 Downing St., 1600 Pennsylvania Avenue NW
    rf"\b\d{{1,5}}[a-z]?,?\s+(?:[A-Z][\w'’.-]*\s+){{0,4}}(?:{_STREET_WORDS})\b\.?"
    # Hauptstraße 5, Lindenweg 12a, rue de Rivoli 8 / 8 rue de Rivoli
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring)\s+\d{1,5}[a-z]?\b"
    r"|\b\d{1,5},?\s+(?:rue|avenue|boulevard|calle|via|viale|piazza|plaza)\s+(?:\w+\s+){0,3}\w+",
    re.IGNORECASE,
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[card]" if _luhn(digits) else m.group(0)


def redact(text: str) -> str:
    """``text`` without the customer data it may carry."""
    out = _EMAIL.sub("[email]", text)
    out = _CARD.sub(_card, out)
    out = _PHONE.sub("[phone]", out)
    return _ADDRESS.sub("[address]", out)
