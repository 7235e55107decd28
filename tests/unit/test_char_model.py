"""The character n-gram half of the intent model (``brain.char_model``)."""

from __future__ import annotations

import numpy as np

from brain.char_model import CharNgramModel

TEXTS = [
    "where is my order", "track my order", "has my order shipped", "order status please",
    "i want a refund", "refund my money", "how do i get a refund", "give me a refund",
]  # fmt: skip
LABELS = [0, 0, 0, 0, 1, 1, 1, 1]


def test_a_misspelt_message_keeps_its_intent() -> None:
    model = CharNgramModel.fit(TEXTS, LABELS, 2, alpha=1e-4, seed=0)
    log_p = model.log_probabilities(["wher is my ordr", "refnd pls"])
    assert log_p.argmax(axis=1).tolist() == [0, 1]
    assert np.allclose(np.exp(log_p).sum(axis=1), 1.0)


def test_a_model_read_back_from_its_state_scores_the_same() -> None:
    model = CharNgramModel.fit(TEXTS, LABELS, 2, alpha=1e-4, seed=0)
    again = CharNgramModel.from_state(model.state())
    queries = ["tracking my order", "money back", "zzz"]
    assert np.allclose(again.log_probabilities(queries), model.log_probabilities(queries))
