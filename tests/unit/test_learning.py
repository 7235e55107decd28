"""The held-out set of ``omnigate learn`` (``brain.learning``) is fixed: the same feedback
example is held out on every run, whatever else was recorded, and the same shipped rows."""

from __future__ import annotations

from brain.learning import (
    SHIPPED_HELD_OUT_PER_INTENT,
    Labelled,
    shipped_held_out,
    split_feedback,
)


def examples(n: int, start: int = 0) -> list[Labelled]:
    return [Labelled(f"where is parcel number {i}", "track_order") for i in range(start, start + n)]


def test_one_feedback_example_in_five_is_held_out_and_stays_held_out() -> None:
    train, held = split_feedback(examples(200))
    assert 20 <= len(held) <= 60 and len(train) + len(held) == 200
    # More feedback later: what was held out still is, and nothing trained on moves over.
    train2, held2 = split_feedback(examples(200) + examples(100, start=200))
    assert set(held) <= set(held2)
    assert set(train) <= set(train2)


def test_the_same_words_fall_on_the_same_side() -> None:
    said_twice = [Labelled("Where is my parcel?", "track_order")] * 2 + examples(30)
    train, held = split_feedback(said_twice)
    sides = {e in held for e in said_twice[:2]}
    assert len(sides) == 1
    assert len(train) + len(held) == len(said_twice)


def test_a_handful_of_examples_still_holds_one_out() -> None:
    few = examples(3)
    train, held = split_feedback(few)
    assert held and train and len(train) + len(held) == 3


def test_the_shipped_part_is_a_few_rows_of_every_intent() -> None:
    texts, labels = shipped_held_out()
    assert texts == shipped_held_out()[0]
    counts = {lab: labels.count(lab) for lab in set(labels)}
    assert set(counts.values()) == {SHIPPED_HELD_OUT_PER_INTENT}
    assert "out_of_scope" in counts and "track_order" in counts
