"""The blend's second stage: a learning-to-rank model that re-orders the members' best items.

The weighted sum of ``recs_blend`` gives each member one weight for every history. Which
member to trust depends on the history and the item, though: SASRec on a long history, the
item-to-item models on a short one, a member's lone confident pick more than its tenth.
``Reranker`` learns that from held-out next items: LightGBM's LambdaRank (Burges 2010) over
each member's 0..1 score (``recs_blend.scaled``), the item's popularity and the history's
length, for the union of every member's top ``TOP`` items (the candidates). Items outside
the candidates keep the weighted sum, below every candidate.

It is trained on the inner split's held-out users (``recs_bundle.fit_bundle``) and only where
there are enough of them (``MIN_USERS``): a small shop keeps the weighted sum alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import torch

from brain.recs_blend import scaled

TOP = 50  # each member's best items that become candidates
# Held-out users whose next item is among their candidates, fewest to learn from: below
# it (a small shop) the weighted sum ranks alone.
MIN_USERS = 1000
# Chosen on the Games inner split (recall/ndcg@10 of 0.1440/0.0835 against 0.1389/0.0814 for
# the weighted sum, seed 0): few, shallow trees; deeper or longer fits overfit the few
# thousand held-out users (15 leaves: 0.0811; 600 rounds: 0.0815).
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 300,
    "lambda_l2": 10.0,
    "verbose": -1,
}
ROUNDS = 100


def on_scale(parts: Mapping[str, np.ndarray], members: Sequence[str]) -> dict[str, np.ndarray]:
    """Each member's raw scores on the blend's 0..1 scale (``recs_blend.scaled``)."""
    return {name: scaled(name, parts[name]) for name in members}


def candidates(
    scores: Mapping[str, np.ndarray], members: Sequence[str], seen: np.ndarray
) -> np.ndarray:
    """``(B, C)`` bool: the union of each member's ``TOP`` best items per row (``scores``
    from ``on_scale``), among those ``seen`` (B, C) does not mark (the history's own items,
    padding)."""
    out = np.zeros(seen.shape, dtype=bool)
    k = min(TOP, seen.shape[1])
    for name in members:
        s = np.where(seen, 0.0, scores[name])
        positive = s > 0  # a member that scores an item 0 has no opinion on it
        few = positive.sum(axis=1) <= k
        out[few] |= positive[few]  # all of them
        # Only rows with more than k opinions are partitioned: an item-to-item row is often
        # all zeros (an item no one bought with another), and partitioning a row of equal
        # values is ten times slower than one of distinct values.
        many = np.flatnonzero(~few)
        if len(many):
            best = np.argpartition(-s[many], k - 1, axis=1)[:, :k]
            out[many[:, None], best] = True
    return out


def features(
    scores: Mapping[str, np.ndarray],
    members: Sequence[str],
    pop: np.ndarray,
    lengths: np.ndarray,
    mask: np.ndarray,
) -> np.ndarray:
    """``(mask.sum(), len(members) + 2)`` float32: each masked item's member scores (0..1,
    ``on_scale``), its log popularity (``pop``: each column's count) and its history's
    length, row by row."""
    rows, cols = np.nonzero(mask)
    columns = [scores[name][rows, cols] for name in members]
    columns += [np.log1p(np.maximum(pop[cols], 0.0)), lengths[rows].astype(np.float32)]
    return np.stack(columns, axis=1).astype(np.float32)


@dataclass
class Reranker:
    """A LambdaRank model over ``members``' scores (see the module docstring)."""

    members: tuple[str, ...]
    booster: lgb.Booster

    @classmethod
    def fit(
        cls,
        parts_of: Callable[[Sequence[Sequence[int]]], Mapping[str, np.ndarray]],
        histories: Sequence[Sequence[int]],
        targets: np.ndarray,
        pop: np.ndarray,
        seed: int = 0,
        chunk: int = 512,
    ) -> Reranker | None:
        """Learn from held-out ``targets`` (B,), the next items of ``histories``;
        ``parts_of(histories)`` gives the members' raw ``(B, n_items + 1)`` scores. None
        when fewer than ``MIN_USERS`` targets are among their candidates."""
        members: tuple[str, ...] = ()
        xs, ys, groups = [], [], []
        for i in range(0, len(targets), chunk):
            hist, tgt = histories[i : i + chunk], targets[i : i + chunk]
            parts = parts_of(hist)
            members = members or tuple(sorted(parts))
            sc = on_scale(parts, members)
            mask = candidates(sc, members, _seen(hist, sc[members[0]].shape[1]))
            hit = mask[np.arange(len(tgt)), tgt]
            mask &= hit[:, None]  # LambdaRank learns nothing from a list without its target
            x = features(sc, members, pop, _lengths(hist), mask)
            rows, cols = np.nonzero(mask)
            xs.append(x)
            ys.append((cols == tgt[rows]).astype(np.float32))
            groups.append(np.bincount(rows, minlength=len(tgt))[hit])
        group = np.concatenate(groups) if groups else np.zeros(0, np.int64)
        if len(group) < MIN_USERS:
            return None
        data = lgb.Dataset(np.concatenate(xs), np.concatenate(ys), group=group)
        params = {**PARAMS, "seed": seed, "num_threads": torch.get_num_threads()}
        return cls(members, lgb.train(params, data, ROUNDS))

    def rank(
        self,
        scores: Mapping[str, np.ndarray],
        histories: Sequence[Sequence[int]],
        columns: np.ndarray,
        pop: np.ndarray,
        base: np.ndarray,
    ) -> np.ndarray:
        """``base`` (B, C), the weighted sum (0..1), re-ranked: the candidates score
        0.5..1 by the model (1 for a row's best), every other item half its ``base``.
        ``scores`` are the members' (``on_scale``), ``columns`` (C,) the model item ids of
        their columns and ``pop`` their counts; a history's own items are never
        candidates."""
        mask = candidates(scores, self.members, _seen(histories, columns))
        mask[np.array([not h for h in histories], dtype=bool)] = False  # cold start: base
        out = 0.5 * base
        if not mask.any():
            return out
        x = features(scores, self.members, pop, _lengths(histories), mask)
        pred = np.full(mask.shape, -np.inf, dtype=np.float64)
        pred[mask] = self.booster.predict(x, num_threads=torch.get_num_threads())
        top = pred.max(axis=1, keepdims=True)
        rel = np.exp(pred - np.where(np.isfinite(top), top, 0.0))
        return np.where(mask, 0.5 + 0.5 * rel, out).astype(np.float32)

    def state(self) -> dict[str, Any]:
        """Plain values for ``torch.save``."""
        return {"members": list(self.members), "model": self.booster.model_to_string()}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Reranker:
        """Inverse of ``state``."""
        return cls(tuple(s["members"]), lgb.Booster(model_str=s["model"]))


def _lengths(histories: Sequence[Sequence[int]]) -> np.ndarray:
    return np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))


def _seen(histories: Sequence[Sequence[int]], columns: np.ndarray | int) -> np.ndarray:
    """``(B, C)`` bool: padding (item 0) and each history's own items, where ``columns``
    is the number of item ids (all of them, in order) or the ids of the columns."""
    ids = np.arange(columns) if isinstance(columns, int) else np.asarray(columns, np.int64)
    top = max(int(ids.max(initial=0)), max((max(h, default=0) for h in histories), default=0))
    where = np.full(top + 1, -1, dtype=np.int64)  # item id -> its column, -1: not a column
    where[ids] = np.arange(len(ids))
    seen = np.zeros((len(histories), len(ids)), dtype=bool)
    seen[:, ids == 0] = True
    for r, h in enumerate(histories):
        cols = where[np.asarray(h, dtype=np.int64)]
        seen[r, cols[cols >= 0]] = True
    return seen
