"""Grounded streaming: a reply is released to the customer clause by clause, each clause
checked against the turn's facts first.

``release_checked`` reads the model's text pieces, cuts them into clauses (a sentence, or the
part of one before a comma or semicolon: ``brain.grounding.complete_clauses``), and hands each
clause that passes ``brain.grounding.check_sentence`` (and the caller's own style check) to the
turn's delta sink — the channel that shows the reply as it grows. Clauses rather than whole
sentences, because a small model on a CPU writes a token every ~35 ms: the first words show
after the first comma instead of after the first full stop. No fact the check reads spans a
clause boundary, so nothing is checked less. The first clause that fails stops the stream: the
model's request is closed (it leaves the batch) and the caller sends its grounded text instead,
so nothing unchecked ever reaches a customer.

The delta sink is set per turn by whoever runs the brain (``delta_sink.set(fn)``); without
one the clauses are only collected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from brain.grounding import Facts, check_sentence, complete_clauses

# Where the checked clauses of the turn's reply go as they are released (text to append).
delta_sink: ContextVar[Callable[[str], None] | None] = ContextVar("delta_sink", default=None)

# What a model writes before its answer that is no part of it ("Reply: ...").
_PREFIX = re.compile(r"^(draft reply|reply|assistant|answer)\s*:\s*", re.I)

ClauseCheck = Callable[[str, list[str]], list[str]]

# A reply that says again this many words in a row has started to loop (see ``_repeats``).
REPEAT_WORDS = 5


@dataclass(frozen=True)
class Released:
    """What ``release_checked`` let through: ``text``, the finished sentences it released
    (joined as the customer saw them; everything released when a problem stopped it), and the
    ``problems`` that stopped the stream (empty when none did)."""

    text: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Did every clause pass, and was at least one sentence released?"""
        return not self.problems and bool(self.text)


def release_checked(
    pieces: Iterator[str], facts: Facts, style: ClauseCheck | None = None
) -> Released:
    """Release the clauses of ``pieces`` that pass the checks, stopping at the first that
    fails. ``style(clause, released_so_far)`` may add problems of its own (too long, role
    text). A sentence the model never finished (it ran out of tokens) is not part of the
    reply: its clauses may have been shown, but the final text ends at the last full sentence.
    A clause that repeats five words in a row of what was released ends the reply there too: a
    small model that loops ("I'm here to help with returns, refunds, and delivery. I can also
    help with returns, refunds, and delivery.") has said what it had to say.
    """
    sink = delta_sink.get()
    released: list[str] = []
    finished = 0  # how many of the released clauses make up whole sentences
    buffer = ""

    def take(clause: str, ends_sentence: bool) -> Released | None:
        """Release ``clause``; the outcome when it ends the reply, else None."""
        nonlocal finished
        if not released:
            clause = _PREFIX.sub("", clause).strip()
            if not clause:
                return None
        if _repeats(clause, released):
            return Released(" ".join(released[:finished]), ())
        problems = _problems(clause, released, facts, style)
        if problems:
            return Released(" ".join(released), tuple(problems))
        if sink is not None:
            sink((" " if released else "") + clause)
        released.append(clause)
        if ends_sentence:
            finished = len(released)
        return None

    try:
        for piece in pieces:
            buffer += piece
            clauses, buffer = complete_clauses(buffer)
            for clause, ends_sentence in clauses:
                if (outcome := take(clause, ends_sentence)) is not None:
                    return outcome
        last = buffer.strip()
        if last.endswith((".", "!", "?", "…", ")")):  # a finished last sentence
            if (outcome := take(last, True)) is not None:
                return outcome
        return Released(" ".join(released[:finished]), ())
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # the model stops generating for a reply nobody reads


def _repeats(clause: str, released: list[str]) -> bool:
    """Does ``clause`` complete a run of ``REPEAT_WORDS`` words the reply already holds? (A
    short opener said twice, "Yes, ... Yes, ...", is no repetition.)"""
    before = _words(" ".join(released))
    seen = {tuple(before[i : i + REPEAT_WORDS]) for i in range(len(before) - REPEAT_WORDS + 1)}
    words = before[len(before) - (REPEAT_WORDS - 1) :] + _words(clause)
    runs = (tuple(words[i : i + REPEAT_WORDS]) for i in range(len(words) - REPEAT_WORDS + 1))
    return any(run in seen for run in runs)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _problems(
    clause: str, released: list[str], facts: Facts, style: ClauseCheck | None
) -> list[str]:
    problems = list(check_sentence(clause, facts).problems)
    if style is not None:
        problems += style(clause, released)
    return problems
