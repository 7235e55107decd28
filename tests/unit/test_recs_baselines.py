"""EASE, RP3beta and the blend on tiny hand-made purchase histories whose answers can be
worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from brain.recs_baselines import TextSimilarity, ease, history_vectors, itemknn, rp3beta
from brain.recs_blend import blend, simplex_grid, tune_weights


def test_ease_weights_match_the_closed_form() -> None:
    # Items 1 and 2 are always bought together (by two customers), item 3 alone by a third.
    # Gram + l2 I = [[3, 2], [2, 3]] for items 1-2, so P = [[3, -2], [-2, 3]] / 5 and
    # B = I - P / diag(P) has 2/3 off the diagonal; item 3 shares no customer: weight 0.
    model = ease([[1, 2], [1, 2], [3]], n_items=3, l2=1.0, min_count=1)
    w = model.w.toarray()[1:, 1:]
    assert w == pytest.approx(np.array([[0, 2 / 3, 0], [2 / 3, 0, 0], [0, 0, 0]]), abs=1e-5)


def test_ease_leaves_out_items_rarer_than_min_count() -> None:
    model = ease([[1, 2], [1, 2], [1, 3]], n_items=3, l2=1.0, min_count=2)
    w = model.w.toarray()
    assert w[:, 3].sum() == 0 and w[3].sum() == 0  # item 3 was bought once
    assert w[1, 2] > 0 and w[2, 1] > 0


def test_rp3beta_is_the_three_step_random_walk() -> None:
    # P(user | item) then P(item | user): from item 1 (customers u1, u2, u3) the walk
    # reaches item 2 via u1 and u3 (1/3 * 1/2 each) and item 3 via u2 (1/3 * 1/2).
    histories = [[1, 2], [1, 3], [1, 2]]
    walk = rp3beta(histories, n_items=3, alpha=1.0, beta=0.0).w.toarray()[1:, 1:]
    assert walk == pytest.approx(
        np.array([[0, 1 / 3, 1 / 6], [1 / 2, 0, 0], [1 / 2, 0, 0]]), abs=1e-6
    )
    # beta = 1 divides by the target's popularity (3, 2, 1 customers): the rare item 3
    # now ties with item 2 as item 1's neighbour.
    damped = rp3beta(histories, n_items=3, alpha=1.0, beta=1.0).w.toarray()[1:, 1:]
    assert damped[0, 1] == pytest.approx(1 / 6) and damped[0, 2] == pytest.approx(1 / 6)
    assert damped[1, 0] == pytest.approx(1 / 6)


def test_itemknn_is_the_shrunk_cosine() -> None:
    # Item 1: customers u1, u2, u3; item 2: u1, u3; item 3: u2. Two customers share items 1
    # and 2, so their cosine is 2 / sqrt(3 * 2); with shrink 1 the denominator grows by 1.
    histories = [[1, 2], [1, 3], [1, 2]]
    cosine = itemknn(histories, n_items=3, shrink=0.0).w.toarray()[1:, 1:]
    assert cosine[0, 1] == pytest.approx(2 / np.sqrt(6)) and cosine[1, 0] == cosine[0, 1]
    assert cosine[0, 2] == pytest.approx(1 / np.sqrt(3)) and cosine[1, 2] == 0.0
    assert np.diag(cosine).sum() == 0.0  # an item is not its own neighbour
    shrunk = itemknn(histories, n_items=3, shrink=1.0).w.toarray()[1:, 1:]
    assert shrunk[0, 1] == pytest.approx(2 / (np.sqrt(6) + 1))
    # The shrinkage costs the pair seen by one customer more than the pair seen by two.
    assert shrunk[0, 2] / cosine[0, 2] < shrunk[0, 1] / cosine[0, 1]


def test_titles_sharing_a_series_or_platform_are_neighbours() -> None:
    titles = [
        "",
        "Zelda Breath of the Wild - Nintendo Switch",
        "Zelda Tears of the Kingdom - Nintendo Switch",
        "Halo Infinite - Xbox Series X",
        "Halo 5 Guardians - Xbox One",
        "Mario Kart 8 Deluxe - Nintendo Switch",
    ]
    model = TextSimilarity.fit(titles)
    after_zelda = model.scores([[1]])[0]
    assert np.argmax(after_zelda) == 2  # the other Zelda: series and platform
    assert after_zelda[5] > after_zelda[3]  # same platform beats another series elsewhere
    assert after_zelda[1] == 0  # not itself
    assert np.argmax(model.scores([[3]])[0]) == 4
    assert np.argmax(model.scores([[1, 3]])[0]) == 4  # the latest item weighs most


def test_titles_with_no_shared_word_give_no_neighbours() -> None:
    scores = TextSimilarity.fit(["", "tent", "kayak"]).scores([[1]])
    assert (scores[0, 1:] == 0).all()


def test_recent_items_weigh_most_in_a_history() -> None:
    x = history_vectors([[1, 2, 3]], n_items=3, decay=0.5).toarray()
    assert x[0, 1:].tolist() == [0.25, 0.5, 1.0]


def test_scores_follow_the_last_item() -> None:
    # Customers who buy 1 go on to 2; customers who buy 3 go on to 4.
    histories = [[1, 2]] * 5 + [[3, 4]] * 5
    for model in (
        ease(histories, 4, l2=1.0, min_count=1),
        rp3beta(histories, 4),
        itemknn(histories, 4),
    ):
        s = model.scores([[3], [1]])
        assert int(np.argmax(s[0])) == 4 and int(np.argmax(s[1])) == 2


def test_tuning_puts_the_weight_on_the_model_that_predicts() -> None:
    rng = np.random.default_rng(0)
    n, b = 30, 200
    targets = rng.integers(1, n + 1, size=b)
    histories = [[int(t % n) + 1] for t in targets]  # never the target itself
    right = rng.random((b, n + 1)) * 0.5
    right[np.arange(b), targets] = 1.0  # knows the answer
    noise = rng.random((b, n + 1))

    def parts_of(hs: object) -> dict[str, np.ndarray]:
        return {"good": right, "noise": noise}  # one chunk: all the histories

    weights, metrics = tune_weights(parts_of, histories, targets, np.ones(n + 1), chunk=b)
    assert weights["good"] > weights["noise"] and metrics["ndcg@10"] == pytest.approx(1.0)


def test_blend_of_an_empty_history_is_popularity() -> None:
    pop = np.array([0.0, 5.0, 50.0, 1.0])
    out = blend({"ease": np.zeros((1, 4))}, {"ease": 1.0}, pop, np.array([True]))
    assert int(np.argmax(out[0])) == 2 and out[0, 2] == pytest.approx(1.0)


def test_simplex_grid_sums_to_one() -> None:
    grid = simplex_grid(["a", "b", "c"], step=0.5)
    assert len(grid) == 6 and all(sum(w.values()) == pytest.approx(1.0) for w in grid)
