"""The nearest training sentences' vote in the intent model (``brain.intent_model.Memory``)."""

from __future__ import annotations

import torch

from brain.intent_model import Memory, TrainConfig

# Three training sentences in two labels, as unit vectors of a 4-d embedding.
EMBEDDINGS = torch.tensor(
    [[1.0, 0.0, 0.0, 0.0], [0.96, 0.28, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
).half()
MEMORY = Memory(EMBEDDINGS, torch.tensor([0, 0, 1]), n_labels=2)
CONFIG = TrainConfig(knn_k=2)


def _odds(query: list[float]) -> list[float]:
    return MEMORY.log_votes(torch.tensor([query]), CONFIG).exp()[0].tolist()


def test_a_message_next_to_training_sentences_takes_their_label() -> None:
    p = _odds([1.0, 0.05, 0.0, 0.0])
    assert p[0] > 0.95 and abs(sum(p) - 1) < 1e-5


def test_a_message_far_from_every_training_sentence_gets_even_odds() -> None:
    p = _odds([0.0, 0.0, 1.0, 0.0])  # cosine 0 with all of them
    assert abs(p[0] - 0.5) < 0.01 and abs(p[1] - 0.5) < 0.01
