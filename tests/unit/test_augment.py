"""The augmenter that teaches the intent model how customers type."""

from __future__ import annotations

import random

from brain.augment import augment, noisy

SENTENCES = [
    "Could you help me cancel my order?",
    "I want to change the shipping address of my purchase.",
    "How can I get a refund for the cancelled item?",
    "Where is my parcel, please?",
]


def test_same_seed_same_variants() -> None:
    first = augment(SENTENCES, ["a", "b", "c", "d"], copies=3, seed=5)
    again = augment(SENTENCES, ["a", "b", "c", "d"], copies=3, seed=5)
    assert first == again
    assert first != augment(SENTENCES, ["a", "b", "c", "d"], copies=3, seed=6)


def test_originals_come_first_and_variants_keep_their_label() -> None:
    texts, labels = augment(SENTENCES, ["a", "b", "c", "d"], copies=2, seed=1)
    assert texts[:4] == SENTENCES
    assert len(texts) > 4
    for text, label in zip(texts[4:], labels[4:], strict=True):
        source = SENTENCES["abcd".index(label)]
        shared = set(text.lower().split()) & set(source.lower().split())
        assert shared, (text, source)  # a variant of its own sentence, not of another


def test_variants_look_typed_in_a_hurry() -> None:
    rng = random.Random(0)
    variants = {noisy(s, rng) for s in SENTENCES for _ in range(30)}
    assert any(v == v.lower() and "?" not in v for v in variants)  # lower case, no punctuation
    assert any(v.startswith("cancel my order") for v in variants)  # a fragment
    assert any(" pls" in v or "plz" in v for v in variants)  # chat shorthand
    assert any("canceled" in v for v in variants)  # US spelling of "cancelled"
    assert any(w not in " ".join(SENTENCES).lower() for v in variants for w in v.split())  # typos


def test_never_empty() -> None:
    rng = random.Random(3)
    assert all(noisy(word, rng) for word in ("hi", "?", "ok", "thanks!") for _ in range(20))


def test_some_variants_carry_an_order_number_or_email_but_not_small_talk() -> None:
    texts, labels = augment([*SENTENCES, "hello there"], [*"abcd", "greeting"], copies=30, seed=2)
    referenced = {
        label for text, label in zip(texts, labels, strict=True) if "@" in text or "#" in text
    }
    assert referenced and "greeting" not in referenced
