"""Grounding: an LLM reply may only say what the facts of the turn say.

The dialogue computes a grounded answer from the store and the knowledge passages; the LLM
may rephrase it. ``check`` pulls every checkable fact out of the LLM's text (order ids,
statuses, dates, tracking numbers, prices, SKUs, emails, URLs, any number) and refuses the
reply when one of them is not among the facts, or when a required fact went missing. The
caller then sends the grounded answer instead. Strict on purpose: a 135M model invents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STATUSES = ("processing", "shipped", "delivered", "cancelled", "canceled", "returned")
_URL = re.compile(r"(?:https?://|www\.|/static/)[^\s)\]>\"']+", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Any token that holds a digit: numbers, prices, dates, ids, SKUs, tracking numbers.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.:,]*\d[A-Za-z0-9\-_/.:,]*|\d")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_STATUS = re.compile(r"\b(" + "|".join(STATUSES) + r")\b", re.I)
_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
# Full month names and their usual abbreviations ("may" is left out: it is mostly a verb).
_MONTH = re.compile(
    r"\b("
    + "|".join(m for m in _MONTHS if m != "may")
    + "|"
    + "|".join(m[:3] for m in _MONTHS if m != "may")
    + r")\b",
    re.I,
)
_PLAIN_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# Words that make a promise the facts must back up.
_PROMISES = re.compile(r"\b(refund(?:ed)?|free|discount|voucher|coupon|compensat\w*)\b", re.I)


@dataclass
class Facts:
    """What a reply of this turn may state.

    ``text`` holds every fact as text (the grounded answer, store values, passages);
    ``required`` lists strings the reply must keep (e.g. the order id and its status).
    """

    text: str
    required: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``check``: ``ok`` or the reasons it failed."""

    ok: bool
    problems: tuple[str, ...] = ()


def _norm_code(token: str) -> str:
    return token.strip(".,:;!?").upper()


def numbers(text: str) -> set[str]:
    """Numbers in ``text``, normalised: "4,95" → "4.95", "05" → "5", "60.00" → "60"."""
    out = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", ".")
        try:
            num = float(value)
        except ValueError:
            continue
        out.add(f"{num:g}")
    return out


def check(reply: str, facts: Facts) -> Verdict:
    """Is every fact of ``reply`` backed by ``facts``, and every required one kept?"""
    problems: list[str] = []
    allowed = facts.text
    allowed_upper = allowed.upper()
    allowed_lower = allowed.lower()
    if not reply.strip():
        return Verdict(False, ("empty reply",))
    for url in _URL.findall(reply):
        if url.rstrip(".,;:!?") not in allowed:
            problems.append(f"url {url!r}")
    for email in _EMAIL.findall(reply):
        if email.lower().rstrip(".") not in allowed_lower:
            problems.append(f"email {email!r}")
    without_links = _EMAIL.sub(" ", _URL.sub(" ", reply))
    for token in _CODE.findall(without_links):
        code = _norm_code(token)
        if not code or code in allowed_upper:
            continue
        # A plain number may be written differently ("4,95", "05"); anything with letters
        # or dashes (ids, SKUs, dates, tracking numbers) must appear exactly.
        if _PLAIN_NUMBER.fullmatch(code) and numbers(code) <= numbers(allowed):
            continue
        problems.append(f"value {token!r}")
    for status in _STATUS.findall(reply):
        word = status.lower().replace("canceled", "cancelled")
        if word not in allowed_lower:
            problems.append(f"status {status!r}")
    for month in _MONTH.findall(reply):
        if month.lower() not in allowed_lower and not _has_month_date(allowed, month):
            problems.append(f"date {month!r}")
    for month, day in _day_dates(reply):
        index = next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(month.lower()[:3]))
        if f"-{index:02d}-{day:02d}" not in allowed:
            problems.append(f"date {month} {day}")
    for promise in _PROMISES.findall(reply):
        if promise.lower()[:6] not in allowed_lower:
            problems.append(f"promise {promise!r}")
    for req in facts.required:
        if req.lower() not in reply.lower():
            problems.append(f"dropped {req!r}")
    return Verdict(not problems, tuple(problems))


def _day_dates(text: str) -> list[tuple[str, int]]:
    """(month, day) pairs written as "March 4", "4 March" or "March 4th"."""
    months = "|".join(_MONTHS) + "|" + "|".join(m[:3] for m in _MONTHS)
    out = []
    for m in re.finditer(rf"\b({months})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", text, re.I):
        out.append((m.group(1), int(m.group(2))))
    for m in re.finditer(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({months})\b", text, re.I):
        out.append((m.group(2), int(m.group(1))))
    return out


def _has_month_date(text: str, month: str) -> bool:
    """Does ``text`` hold an ISO date in ``month`` (so "March 4" may stand for 2025-03-04)?"""
    index = next(i for i, m in enumerate(_MONTHS, start=1) if m.startswith(month.lower()[:3]))
    return re.search(rf"\b\d{{4}}-{index:02d}-\d{{2}}\b", text) is not None


# A sentence ends at . ! ? (or an ellipsis), with any closing quote or bracket, before
# whitespace; a line break ends one too. "4.95" or "e.g.x" do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*[ \t]+|[ \t]*\n+[ \t]*")


def complete_sentences(text: str) -> tuple[list[str], str]:
    """The complete sentences at the start of ``text`` and the unfinished rest, for text
    that is still being generated (the rest may grow into a sentence)."""
    sentences, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        sentence = text[start : m.start()].strip() + text[m.start() : m.end()].rstrip(" \t\n")
        if sentence.strip():
            sentences.append(sentence.strip())
        start = m.end()
    return sentences, text[start:]


# A clause ends at a comma or semicolon before whitespace. None of the facts ``check`` reads
# (ids, numbers, prices, dates, URLs, emails, statuses) holds ", " or "; ", so a clause checked
# alone is checked as strictly as the sentence it belongs to.
_CLAUSE_END = re.compile(r"(?<=[,;])[ \t]+")


def complete_clauses(text: str) -> tuple[list[tuple[str, bool]], str]:
    """The complete clauses at the start of ``text``, each with whether it ends its sentence,
    and the unfinished rest, for text that is still being generated: the finest pieces a
    streamed reply can be checked and shown in."""
    sentences, rest = complete_sentences(text)
    clauses: list[tuple[str, bool]] = []
    for sentence in sentences:
        *inner, last = _CLAUSE_END.split(sentence)
        clauses += [(clause.strip(), False) for clause in inner if clause.strip()]
        clauses.append((last.strip(), True))
    *inner, rest = _CLAUSE_END.split(rest)
    clauses += [(clause.strip(), False) for clause in inner if clause.strip()]
    return clauses, rest


def check_sentence(sentence: str, facts: Facts) -> Verdict:
    """``check`` of one sentence (or clause) of a reply: every fact it states must be backed
    by ``facts``; whether the required facts were kept is a question for the whole reply."""
    return check(sentence, Facts(facts.text))
