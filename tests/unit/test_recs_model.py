"""SASRec's scoring: what a history scores does not depend on the batch it is scored in, nor
on whether all items or only some are asked for."""

from __future__ import annotations

import numpy as np
import torch

from brain.recs_model import SASRec, SASRecConfig, sasrec_scores


def _model(n_items: int = 50) -> SASRec:
    torch.manual_seed(0)
    return SASRec(SASRecConfig(n_items=n_items, max_len=8)).eval()


def test_a_short_history_scores_the_same_alone_and_beside_a_long_one() -> None:
    model = _model()
    short, long = [3, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    alone = sasrec_scores(model, [short])
    batched = sasrec_scores(model, [short, long])
    np.testing.assert_allclose(alone[0, 1:], batched[0, 1:], rtol=1e-5, atol=1e-5)


def test_scores_of_some_items_are_those_columns_of_all_items() -> None:
    model = _model(n_items=400)  # few items asked for: only their logits are computed
    histories = [[5, 9, 11], [2]]
    items = np.array([4, 17, 300, 9])
    some = sasrec_scores(model, histories, items)
    every = sasrec_scores(model, histories)
    np.testing.assert_allclose(some, every[:, items], rtol=1e-5, atol=1e-5)


def test_an_empty_history_scores_zero() -> None:
    scores = sasrec_scores(_model(), [[], [4]], np.array([1, 2, 3]))
    assert (scores[0] == 0).all() and (scores[1] != 0).any()
