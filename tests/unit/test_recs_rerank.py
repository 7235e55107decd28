"""The blend's second stage: which items it re-ranks, what it learns from held-out next
items, and that it survives a save."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brain.recs_blend import blend
from brain.recs_rerank import MIN_USERS, TOP, Reranker, candidates, on_scale

N_ITEMS = 300


def next_item(history: Sequence[int]) -> int:
    """The item that follows a history in this made-up shop."""
    return (history[-1] * 7) % N_ITEMS + 1


def members(histories: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Two members' raw scores: "knows" ranks the true next item first on histories of three
    items or more, and knows nothing on shorter ones; "noise" never knows anything."""
    out: dict[str, list[np.ndarray]] = {"knows": [], "noise": []}
    for h in histories:
        rng = np.random.default_rng(h[-1] * 1000 + len(h))
        knows = rng.random(N_ITEMS + 1)
        knows[next_item(h)] += 1.0 if len(h) >= 3 else 0.0
        out["knows"].append(knows)
        out["noise"].append(rng.random(N_ITEMS + 1))
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def histories(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [list(rng.integers(1, N_ITEMS + 1, size=rng.integers(1, 6))) for _ in range(n)]


def test_candidates_are_each_members_best_unseen_items() -> None:
    parts = {"a": np.arange(400, dtype=np.float32)[None, :], "b": -np.arange(400.0)[None, :]}
    seen = np.zeros((1, 400), dtype=bool)
    seen[0, [0, 399]] = True  # padding and the history's own (a's best) item
    mask = candidates(on_scale(parts, ["a", "b"]), ["a", "b"], seen)
    assert set(np.flatnonzero(mask[0])) == set(range(399 - TOP, 399))  # a's; b scores all < 0


def test_too_few_held_out_users_give_no_reranker() -> None:
    hist = histories(MIN_USERS // 2, seed=0)
    targets = np.array([next_item(h) for h in hist])
    assert Reranker.fit(members, hist, targets, np.ones(N_ITEMS + 1)) is None


def test_it_learns_when_a_member_is_right() -> None:
    hist = histories(4 * MIN_USERS, seed=0)
    pop = np.ones(N_ITEMS + 1, dtype=np.float32)
    reranker = Reranker.fit(members, hist, np.array([next_item(h) for h in hist]), pop)
    assert reranker is not None

    test = [h for h in histories(2000, seed=1) if len(h) >= 3]
    parts = members(test)
    base = blend(parts, {"knows": 0.5, "noise": 0.5}, pop)
    ranked = reranker.rank(
        on_scale(parts, reranker.members), test, np.arange(N_ITEMS + 1), pop, base
    )
    ranked[:, 0] = -1
    firsts = ranked.argmax(axis=1)
    hits = np.mean([f == next_item(h) for f, h in zip(firsts, test, strict=True)])
    base[:, 0] = -1
    base_hits = np.mean([f == next_item(h) for f, h in zip(base.argmax(1), test, strict=True)])
    assert hits > 0.9 > base_hits  # the even weighted sum lets the noise in


def test_candidates_rank_above_the_rest_and_cold_start_keeps_popularity() -> None:
    hist = histories(4 * MIN_USERS, seed=0)
    pop = np.arange(N_ITEMS + 1, dtype=np.float32)
    reranker = Reranker.fit(members, hist, np.array([next_item(h) for h in hist]), pop)
    assert reranker is not None
    test = [[5, 6, 7], []]
    parts = members([[5, 6, 7], [1]])
    base = blend(parts, {"knows": 0.5, "noise": 0.5}, pop, np.array([False, True]))
    out = reranker.rank(on_scale(parts, reranker.members), test, np.arange(N_ITEMS + 1), pop, base)
    seen = np.isin(np.arange(N_ITEMS + 1), [0, 5, 6, 7])[None].repeat(2, axis=0)
    mask = candidates(on_scale(parts, reranker.members), reranker.members, seen)
    assert out[0][mask[0]].min() >= 0.5 > out[0][~mask[0]].max()
    assert out[0].max() == 1.0 and out[0, [5, 6, 7]].max() < 0.5  # own items: never re-ranked
    np.testing.assert_allclose(out[1], 0.5 * base[1])  # an empty history: popularity's order


def test_a_saved_reranker_ranks_the_same() -> None:
    hist = histories(4 * MIN_USERS, seed=0)
    pop = np.ones(N_ITEMS + 1, dtype=np.float32)
    reranker = Reranker.fit(members, hist, np.array([next_item(h) for h in hist]), pop)
    assert reranker is not None
    again = Reranker.from_state(reranker.state())
    test = histories(50, seed=2)
    parts = members(test)
    base = blend(parts, {"knows": 0.5, "noise": 0.5}, pop)
    ids = np.arange(N_ITEMS + 1)
    np.testing.assert_array_equal(
        reranker.rank(on_scale(parts, reranker.members), test, ids, pop, base),
        again.rank(on_scale(parts, again.members), test, ids, pop, base),
    )
