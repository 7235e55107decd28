"""Grounded streaming: a reply is released to the customer sentence by sentence, each one
checked against the turn's facts first.

``release_checked`` reads the model's text pieces, cuts them into sentences, and hands each
sentence that passes ``brain.grounding.check_sentence`` (and the caller's own style check) to
the turn's delta sink — the channel that shows the reply as it grows. The first sentence that
fails stops the stream: the model's request is closed (it leaves the batch) and the caller
sends its grounded text instead, so nothing unchecked ever reaches a customer.

The delta sink is set per turn by whoever runs the brain (``delta_sink.set(fn)``); without
one the sentences are only collected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from brain.grounding import Facts, check_sentence, complete_sentences

# Where the checked sentences of the turn's reply go as they are released (text to append).
delta_sink: ContextVar[Callable[[str], None] | None] = ContextVar("delta_sink", default=None)

# What a model writes before its answer that is no part of it ("Reply: ...").
_PREFIX = re.compile(r"^(draft reply|reply|assistant|answer)\s*:\s*", re.I)

SentenceCheck = Callable[[str, list[str]], list[str]]


@dataclass(frozen=True)
class Released:
    """What ``release_checked`` let through: ``text`` (the released sentences joined, as the
    customer saw them) and the ``problems`` that stopped the stream (empty when none did)."""

    text: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Did every sentence pass, and was at least one released?"""
        return not self.problems and bool(self.text)


def release_checked(
    pieces: Iterator[str], facts: Facts, style: SentenceCheck | None = None
) -> Released:
    """Release the sentences of ``pieces`` that pass the checks, stopping at the first that
    fails. ``style(sentence, released_so_far)`` may add problems of its own (too long, role
    text). An unfinished sentence at the end (the model ran out of tokens) is never released.
    """
    sink = delta_sink.get()
    released: list[str] = []
    buffer = ""
    try:
        for piece in pieces:
            buffer += piece
            sentences, buffer = complete_sentences(buffer)
            for sentence in sentences:
                if not released:
                    sentence = _PREFIX.sub("", sentence).strip()
                    if not sentence:
                        continue
                problems = _problems(sentence, released, facts, style)
                if problems:
                    return Released(" ".join(released), tuple(problems))
                if sink is not None:
                    sink((" " if released else "") + sentence)
                released.append(sentence)
        last = buffer.strip() if released else _PREFIX.sub("", buffer.strip())
        if last.endswith((".", "!", "?", "…", ")")):  # a finished last sentence
            problems = _problems(last, released, facts, style)
            if problems:
                return Released(" ".join(released), tuple(problems))
            if sink is not None:
                sink((" " if released else "") + last)
            released.append(last)
        return Released(" ".join(released), ())
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # the model stops generating for a reply nobody reads


def _problems(
    sentence: str, released: list[str], facts: Facts, style: SentenceCheck | None
) -> list[str]:
    problems = list(check_sentence(sentence, facts).problems)
    if style is not None:
        problems += style(sentence, released)
    return problems
