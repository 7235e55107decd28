"""Grounded streaming: each clause a model streams is checked before the customer sees it.

The model here is a scripted token source (the one collaborator doubled); the checker is the
real one.
"""

from __future__ import annotations

from collections.abc import Iterator

from brain.generation_grounded import Released, delta_sink, release_checked
from brain.grounding import Facts, complete_clauses, complete_sentences

ORDER = Facts(
    "Order OG-10231 has shipped on 2025-02-03 with DHL; tracking number JD01460894152528.",
    required=["OG-10231"],
)


class ScriptedModel:
    """Yields the given pieces one by one and records how far it was read."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        try:
            for piece in self.pieces:
                self.read += 1
                yield piece
        finally:
            self.closed = True


def _stream_timed(model: ScriptedModel) -> tuple[list[str], list[int], Released]:
    """Run the model through the gate; return what the customer was sent, how many pieces
    the model had given when each part was sent, and the result."""
    shown: list[str] = []
    seen_when: list[int] = []

    def sink(text: str) -> None:
        shown.append(text)
        seen_when.append(model.read)

    token = delta_sink.set(sink)
    try:
        result = release_checked(iter(model), ORDER)
    finally:
        delta_sink.reset(token)
    return shown, seen_when, result


def _stream(model: ScriptedModel) -> tuple[list[str], object]:
    """Run the model through the gate; return what the customer was sent, and the result."""
    shown, _, result = _stream_timed(model)
    return shown, result


def test_an_invented_tracking_number_never_reaches_the_customer() -> None:
    model = ScriptedModel(
        ["Good news", ": order OG-10231", " has shipped. ", "Your tracking", " number is ",
         "1Z999AA1012", "3456784", ". It arrives", " tomorrow. ", "Anything else?"]
    )  # fmt: skip
    shown, result = _stream(model)
    assert shown == ["Good news: order OG-10231 has shipped."]
    assert "1Z999AA10123456784" not in "".join(shown)
    assert not result.ok  # type: ignore[attr-defined]


def test_a_failing_clause_stops_the_model() -> None:
    model = ScriptedModel(["Tracking: 1Z999AA10123456784. ", "More text. ", "And more."])
    _stream(model)
    assert model.closed
    assert model.read == 1  # the bad sentence was complete at once; nothing after was read


def test_checked_clauses_are_released_as_they_complete() -> None:
    model = ScriptedModel(
        ["Your order OG-10231", " has shipped with DHL. ", "Have a", " nice day!"]
    )
    shown, seen_when, result = _stream_timed(model)
    assert result.ok
    assert shown == ["Your order OG-10231 has shipped with DHL.", " Have a nice day!"]
    assert seen_when[0] == 2  # sent before the rest was generated
    assert result.text == "".join(shown)


def test_an_unfinished_last_sentence_is_held_back() -> None:
    shown, result = _stream(ScriptedModel(["OG-10231 has shipped. ", "It should arrive on"]))
    assert shown == ["OG-10231 has shipped."]
    assert result.text == "OG-10231 has shipped."  # type: ignore[attr-defined]


def test_a_role_prefix_is_not_part_of_the_reply() -> None:
    shown, _ = _stream(ScriptedModel(["Reply: OG-10231 has shipped."]))
    assert shown == ["OG-10231 has shipped."]


def test_sentences_end_at_punctuation_before_a_space_not_inside_a_price() -> None:
    done, rest = complete_sentences("It costs 4.95 EUR. Shipping is free! And then")
    assert done == ["It costs 4.95 EUR.", "Shipping is free!"]
    assert rest == "And then"


def test_a_clause_is_released_at_its_comma_before_the_sentence_ends() -> None:
    model = ScriptedModel(["Good news", ",", " order OG-10231", " has shipped", "; enjoy it!"])
    shown, seen_when, result = _stream_timed(model)
    assert shown == ["Good news,", " order OG-10231 has shipped;", " enjoy it!"]
    assert seen_when[0] == 3  # as soon as the comma had its space, long before the "!"
    assert result.text == "Good news, order OG-10231 has shipped; enjoy it!"


def test_an_invented_tracking_number_after_a_comma_never_reaches_the_customer() -> None:
    model = ScriptedModel(
        ["Order OG-10231 has shipped", ", tracking", " number ", "1Z999AA10123456784", ", ",
         "so it arrives", " soon."]
    )  # fmt: skip
    shown, result = _stream(model)
    assert shown == ["Order OG-10231 has shipped,"]
    assert not result.ok  # type: ignore[attr-defined]
    assert model.read == 5  # the failing clause stopped the model


def test_a_sentence_the_model_never_finished_is_not_part_of_the_reply() -> None:
    shown, result = _stream(
        ScriptedModel(["OG-10231 has shipped. ", "It is with DHL", ", and it should", " arrive"])
    )
    assert shown == ["OG-10231 has shipped.", " It is with DHL,"]  # shown while it streamed
    assert result.text == "OG-10231 has shipped."  # type: ignore[attr-defined]


def test_a_comma_inside_a_number_does_not_end_a_clause() -> None:
    clauses, rest = complete_clauses("It costs 1,234.50 EUR, shipping included. Then")
    assert clauses == [("It costs 1,234.50 EUR,", False), ("shipping included.", True)]
    assert rest == "Then"


def test_a_reply_that_starts_repeating_itself_ends_before_the_repetition() -> None:
    model = ScriptedModel(
        ["OG-10231 has shipped", " with DHL. ", "We can help with returns", ", refunds",
         ", and delivery. ", "We can also help with returns", ", refunds", ", and delivery. ",
         "More."]
    )  # fmt: skip
    shown, result = _stream(model)
    assert result.text == (  # type: ignore[attr-defined]
        "OG-10231 has shipped with DHL. We can help with returns, refunds, and delivery."
    )
    assert result.ok  # type: ignore[attr-defined]
    assert shown[-1] == " refunds,"  # "... help with returns, refunds, and ..." again: stop
    assert model.closed


def test_an_opener_said_twice_is_no_repetition() -> None:
    _, result = _stream(
        ScriptedModel(["Yes, OG-10231 has shipped. ", "Yes, ", "it is with DHL. ", "Enjoy!"])
    )
    assert result.text == (  # type: ignore[attr-defined]
        "Yes, OG-10231 has shipped. Yes, it is with DHL. Enjoy!"
    )
