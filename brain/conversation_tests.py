"""Conversation tests: YAML files of conversations that say what each reply must and must not
contain, run through a real brain (``omnigate test-conversations``).

The format (fixed by the project brief, shared by everyone who writes suites)::

    store: ../            # optional, relative to the file; --store on the command line wins
    today: 2025-03-10     # optional: the brain's "today" (ISO date); else the real date
    conversations:
      - name: return question is a returns answer
        turns:
          - user: "can I return it if I don't like it?"
            expect:
              contains: ["30 days"]         # every one, case-insensitive
              contains_any: ["return"]      # at least one
              not_contains: ["our team"]    # none
              products: none                # none | any | [SKU, ...] | {min: N, max: M}
              handoff: false                # omitted = not checked
              buttons_contain: ["Talk to"]  # button titles, substring match
          - payload: "human"                # a button press instead of text

All reply texts of a turn are joined with newlines before the text checks; product checks
look at every product card of the turn. Each conversation starts with a fresh session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from brain.types import Brain, HistoryItem, Session, Turn
from channels.schema import Inbound, Reply, User

_TOP_KEYS = {"store", "today", "conversations"}
_CONVERSATION_KEYS = {"name", "turns", "known_failure"}
_TURN_KEYS = {"user", "payload", "expect"}
_EXPECT_KEYS = {
    "contains",
    "contains_any",
    "not_contains",
    "products",
    "handoff",
    "buttons_contain",
}


class ConversationFileError(Exception):
    """A conversation-test file is malformed; the message names the file, the conversation
    (and turn) and the key."""

    def __init__(self, file: Path, problem: str, where: str = "", key: str = "") -> None:
        parts = [str(file)]
        if where:
            parts.append(where)
        if key:
            parts.append(f"key {key!r}")
        super().__init__(": ".join([*parts, problem]))
        self.file = file
        self.where = where
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ProductExpectation:
    """What the product cards of a turn must be: ``kind`` is none, any, skus or count."""

    kind: str
    skus: tuple[str, ...] = ()
    min: int = 0
    max: int | None = None


@dataclass(frozen=True)
class Expect:
    """The checks of one turn; an empty field is not checked."""

    contains: tuple[str, ...] = ()
    contains_any: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    products: ProductExpectation | None = None
    handoff: bool | None = None
    buttons_contain: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnSpec:
    """One customer turn: text or a button payload, and what the replies must show."""

    user: str | None
    payload: str | None
    expect: Expect | None

    @property
    def said(self) -> str:
        """The turn as a person reads it in a report."""
        return self.user if self.user is not None else f"[button {self.payload}]"


@dataclass(frozen=True)
class Conversation:
    """A named conversation of turns."""

    name: str
    turns: tuple[TurnSpec, ...]
    # Why the bot is known to fail this conversation today: a failure is then reported as
    # KNOWN and does not fail the run, and a pass as FIXED (time to drop the mark).
    known_failure: str | None = None


@dataclass(frozen=True)
class Suite:
    """A parsed conversation-test file."""

    path: Path
    store: Path | None  # resolved against the file's folder
    today: date | None
    conversations: tuple[Conversation, ...]


@dataclass
class ConversationResult:
    """How one conversation went: the problems of its first failing turn (empty: passed)."""

    name: str
    turns: int
    failed_turn: int | None = None  # 1-based
    said: str = ""
    problems: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    known_failure: str | None = None

    @property
    def passed(self) -> bool:
        """No check failed."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """Passed, or failed as the file says it is known to fail: the run does not fail."""
        return self.passed or self.known_failure is not None

    @property
    def mark(self) -> str:
        """PASS, FAIL, KNOWN (a known failure) or FIXED (a known failure that now passes)."""
        if self.known_failure is None:
            return "PASS" if self.passed else "FAIL"
        return "FIXED" if self.passed else "KNOWN"


# --- reading a file -----------------------------------------------------------------------


def load_suite(path: Path) -> Suite:
    """Parse and validate a conversation-test file; ``ConversationFileError`` when malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversationFileError(path, "file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConversationFileError(path, f"not valid YAML: {problem}", where) from None
    if not isinstance(data, dict):
        raise ConversationFileError(path, "the file must be a mapping with 'conversations'")
    _no_unknown(path, "", data, _TOP_KEYS)
    store = data.get("store")
    if store is not None and not isinstance(store, str):
        raise ConversationFileError(path, "must be a path (a string)", key="store")
    raw = data.get("conversations")
    if not isinstance(raw, list) or not raw:
        raise ConversationFileError(
            path, "must be a non-empty list of conversations", key="conversations"
        )
    conversations = tuple(_conversation(path, i, c) for i, c in enumerate(raw, start=1))
    names = [c.name for c in conversations]
    for name in names:
        if names.count(name) > 1:
            raise ConversationFileError(path, "is used twice", f"conversation {name!r}", "name")
    return Suite(
        path=path,
        store=(path.parent / store).resolve() if store is not None else None,
        today=_today(path, data.get("today")),
        conversations=conversations,
    )


def _today(path: Path, value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):  # YAML reads an unquoted 2025-03-10 as a date
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConversationFileError(path, f"{value!r} is not an ISO date (YYYY-MM-DD)", key="today")


def _no_unknown(path: Path, where: str, data: dict[str, Any], known: set[str]) -> None:
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise ConversationFileError(path, f"unknown key (allowed: {allowed})", where, str(key))


def _conversation(path: Path, index: int, raw: object) -> Conversation:
    where = f"conversation {index}"
    if not isinstance(raw, dict):
        raise ConversationFileError(path, "must be a mapping with 'name' and 'turns'", where)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConversationFileError(path, "must be a non-empty string", where, "name")
    where = f"conversation {name!r}"
    _no_unknown(path, where, raw, _CONVERSATION_KEYS)
    turns = raw.get("turns")
    if not isinstance(turns, list) or not turns:
        raise ConversationFileError(path, "must be a non-empty list of turns", where, "turns")
    known = raw.get("known_failure")
    if known is not None and (not isinstance(known, str) or not known.strip()):
        raise ConversationFileError(path, "must be a reason (a string)", where, "known_failure")
    return Conversation(
        name=name.strip(),
        turns=tuple(_turn(path, f"{where}, turn {i}", t) for i, t in enumerate(turns, start=1)),
        known_failure=known.strip() if known else None,
    )


def _turn(path: Path, where: str, raw: object) -> TurnSpec:
    if not isinstance(raw, dict):
        raise ConversationFileError(path, "must be a mapping with 'user' or 'payload'", where)
    _no_unknown(path, where, raw, _TURN_KEYS)
    if ("user" in raw) == ("payload" in raw):
        raise ConversationFileError(path, "a turn needs exactly one of 'user' and 'payload'", where)
    key = "user" if "user" in raw else "payload"
    said = raw[key]
    if isinstance(said, int | float) and not isinstance(said, bool):
        said = str(said)  # an unquoted order number or postcode
    if not isinstance(said, str) or (key == "payload" and not said.strip()):
        raise ConversationFileError(path, "must be a string", where, key)
    expect = raw.get("expect")
    if expect is not None and not isinstance(expect, dict):
        raise ConversationFileError(path, "must be a mapping of checks", where, "expect")
    return TurnSpec(
        user=said if key == "user" else None,
        payload=said if key == "payload" else None,
        expect=_expect(path, where, expect) if expect is not None else None,
    )


def _expect(path: Path, where: str, raw: dict[str, Any]) -> Expect:
    _no_unknown(path, where, raw, _EXPECT_KEYS)
    handoff = raw.get("handoff")
    if handoff is not None and not isinstance(handoff, bool):
        raise ConversationFileError(path, "must be true or false", where, "handoff")
    return Expect(
        contains=_strings(path, where, raw, "contains"),
        contains_any=_strings(path, where, raw, "contains_any"),
        not_contains=_strings(path, where, raw, "not_contains"),
        products=_products(path, where, raw["products"]) if "products" in raw else None,
        handoff=handoff,
        buttons_contain=_strings(path, where, raw, "buttons_contain"),
    )


def _strings(path: Path, where: str, raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        raise ConversationFileError(path, "must be a list of strings", where, key)
    return tuple(str(v) for v in value)


def _products(path: Path, where: str, value: object) -> ProductExpectation:
    bad = "must be none, any, a list of SKUs or {min: N, max: M}"
    if value is None or value == "none":  # YAML may read a bare `none` as a string only
        return ProductExpectation("none")
    if value == "any":
        return ProductExpectation("any")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ProductExpectation("skus", skus=tuple(value))
    if isinstance(value, dict) and value and set(value) <= {"min", "max"}:
        low, high = value.get("min", 0), value.get("max")
        ok = isinstance(low, int) and (high is None or isinstance(high, int))
        if ok and low >= 0 and (high is None or high >= low):
            return ProductExpectation("count", min=low, max=high)
    raise ConversationFileError(path, bad, where, "products")


# --- running ------------------------------------------------------------------------------


def check_turn(expect: Expect, replies: Sequence[Reply]) -> list[str]:
    """What the replies of one turn get wrong against ``expect`` (empty: all good)."""
    text = "\n".join(r.text for r in replies)
    low = text.lower()
    problems = [f"missing {s!r}" for s in expect.contains if s.lower() not in low]
    if expect.contains_any and not any(s.lower() in low for s in expect.contains_any):
        problems.append(f"none of {list(expect.contains_any)!r}")
    problems += [f"has {s!r}" for s in expect.not_contains if s.lower() in low]
    skus = [p.sku for r in replies for p in r.products]
    if expect.products is not None:
        problems += _product_problems(expect.products, skus)
    if expect.handoff is not None and any(r.handoff for r in replies) != expect.handoff:
        problems.append(f"handoff: expected {str(expect.handoff).lower()}")
    titles = [b.title.lower() for r in replies for b in r.buttons]
    for want in expect.buttons_contain:
        if not any(want.lower() in t for t in titles):
            problems.append(f"no button {want!r}")
    return problems


def _product_problems(want: ProductExpectation, skus: list[str]) -> list[str]:
    shown = f"got {len(skus)}" + (f" ({', '.join(skus[:5])})" if skus else "")
    if want.kind == "none" and skus:
        return [f"products: expected none, {shown}"]
    if want.kind == "any" and not skus:
        return ["products: expected some, got none"]
    if want.kind == "skus":
        missing = [s for s in want.skus if s not in skus]
        return [f"products: {', '.join(missing)} not shown, {shown}"] if missing else []
    if want.kind == "count":
        if len(skus) < want.min or (want.max is not None and len(skus) > want.max):
            high = "" if want.max is None else str(want.max)
            return [f"products: expected {want.min}..{high}, {shown}"]
    return []


def run_conversation(brain: Brain, conversation: Conversation) -> ConversationResult:
    """Say every turn of ``conversation`` to ``brain`` in a fresh session; stop at the first
    turn whose checks fail."""
    session = Session()
    result = ConversationResult(
        conversation.name, len(conversation.turns), known_failure=conversation.known_failure
    )
    for number, spec in enumerate(conversation.turns, start=1):
        message = Inbound(
            channel="api",
            platform_id=f"conversation-test-{number}",
            user=User(id="conversation-test"),
            conversation="conversation-test",
            text=spec.user or "",
            payload=spec.payload,
        )
        replies = brain.respond(Turn(message=message, session=session))
        # as the worker keeps it, so follow-ups see a real history
        session.history.append(HistoryItem(role="user", text=spec.said))
        session.history.extend(HistoryItem(role="bot", text=r.text) for r in replies)
        problems = check_turn(spec.expect, replies) if spec.expect is not None else []
        if problems:
            result.failed_turn, result.said = number, spec.said
            result.problems, result.replies = problems, list(replies)
            break
    return result


def run_suite(
    suite: Suite, brain: Brain, before_each: Callable[[], None] | None = None
) -> list[ConversationResult]:
    """Run every conversation of ``suite``; ``before_each`` resets shared state (the store's
    orders) so conversations do not see each other's cancellations."""
    results = []
    for conversation in suite.conversations:
        if before_each is not None:
            before_each()
        results.append(run_conversation(brain, conversation))
    return results


def format_report(suite: Suite, results: Sequence[ConversationResult]) -> str:
    """A pass/fail table, then for each failure the turn, its problems and the reply."""
    width = min(60, max(len(r.name) for r in results))
    lines = [f"{'result':<6}  {'conversation':<{width}}  turns", "-" * (width + 15)]
    for r in results:
        name = r.name if len(r.name) <= width else r.name[: width - 1] + "…"
        mark = r.mark
        turns = f"{r.turns}" if r.passed else f"{r.failed_turn}/{r.turns}"
        lines.append(f"{mark:<6}  {name:<{width}}  {turns}")
    passed = sum(r.passed for r in results)
    lines.append("-" * (width + 15))
    known = sum(r.mark == "KNOWN" for r in results)
    tail = f", {known} known failure(s)" if known else ""
    lines.append(f"{passed}/{len(results)} conversations passed{tail} ({suite.path})")
    for r in results:
        if r.passed:
            continue
        lines += ["", f"{r.mark} {r.name} — turn {r.failed_turn}: {r.said!r}"]
        if r.known_failure:
            lines.append(f"  known failure: {r.known_failure}")
        lines += [f"  - {p}" for p in r.problems]
        for reply in r.replies:
            text = reply.text.replace("\n", "\n    ")
            lines.append(f"  reply: {text}")
            if reply.products:
                lines.append(f"  products: {', '.join(p.sku for p in reply.products)}")
            if reply.buttons:
                lines.append(f"  buttons: {', '.join(b.title for b in reply.buttons)}")
            if reply.handoff:
                lines.append("  handoff: true")
    return "\n".join(lines)
