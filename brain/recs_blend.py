"""The blend of the next-item models, and how its weights are chosen on held-out items.

Each model's scores are first put on one scale per history (``scaled``): the learned model's
logits become probabilities relative to the row's best (a softmax without its normaliser,
so one confident next item stands out), item-to-item scores are divided by the row's best.
The blend is their weighted sum plus a hair of popularity that only breaks ties.

``tune_weights`` picks the weights on validation histories, never on the evaluation
target: every point of a simplex grid is scored by ndcg@10 over the union of the models'
top candidates (a weighted sum can only lift an item some model already ranks high).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np

K = 10
LOGIT_MODELS = frozenset({"sasrec"})  # scored by logits (any real); the rest are >= 0
# Popularity (scaled to 0..1) under every blend: far below any model's signal, it orders
# only the items no model has an opinion on, e.g. for a history of never-seen items.
TIE_BREAK = 1e-3


def scaled(name: str, scores: np.ndarray) -> np.ndarray:
    """One model's ``(B, C)`` scores on the blend's 0..1 scale (``-inf`` -> 0)."""
    if name in LOGIT_MODELS:
        finite = np.where(np.isfinite(scores), scores, -np.inf)
        top = finite.max(axis=1, keepdims=True, initial=-np.inf)
        rel = np.exp(finite - np.where(np.isfinite(top), top, 0.0))
        return np.nan_to_num(rel, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    clean = np.where(np.isfinite(scores), np.maximum(scores, 0.0), 0.0)
    top = clean.max(axis=1, keepdims=True, initial=0.0)
    return np.divide(clean, top, out=np.zeros_like(clean), where=top > 0).astype(np.float32)


def popularity_part(pop: np.ndarray) -> np.ndarray:
    """``(C,)`` counts -> 0..1 on a log scale (the tie-breaker and the cold-start ranking)."""
    logp = np.log1p(np.maximum(pop, 0.0))
    top = float(logp.max(initial=0.0))
    return (logp / top if top > 0 else logp).astype(np.float32)


def blend(
    parts: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    pop: np.ndarray,
    empty: np.ndarray | None = None,
) -> np.ndarray:
    """The blended ``(B, C)`` score from each model's raw ``(B, C)`` scores.

    Models missing from ``parts`` (e.g. no learned model for a tiny shop) drop out and the
    remaining weights keep their ratios. ``empty`` (B,) marks histories with nothing in
    them: those rank by popularity alone (cold start).
    """
    used = [k for k, w in weights.items() if k in parts and w > 0]
    rows = len(next(iter(parts.values()))) if parts else 1
    return weighted_sum({k: scaled(k, parts[k]) for k in used}, weights, pop, empty, rows)


def weighted_sum(
    scores: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    pop: np.ndarray,
    empty: np.ndarray | None = None,
    rows: int = 1,
) -> np.ndarray:
    """``blend`` of scores already on the 0..1 scale (``scaled``), for ``rows`` histories."""
    pop_part = popularity_part(pop)
    used = {k: w for k, w in weights.items() if k in scores and w > 0}
    total = sum(used.values())
    out = np.broadcast_to(TIE_BREAK * pop_part, (rows, len(pop_part))).astype(np.float32)
    for k, w in used.items():
        out += (w / total) * scores[k]
    if empty is not None:
        out[empty] = pop_part
    return out


def simplex_grid(names: Sequence[str], step: float = 0.1) -> list[dict[str, float]]:
    """Every weighting of ``names`` with weights multiple of ``step`` summing to 1."""
    n = round(1 / step)
    out = []
    for combo in itertools.product(range(n + 1), repeat=len(names)):
        if sum(combo) == n:
            out.append({m: c / n for m, c in zip(names, combo, strict=True)})
    return out


def _candidates(
    parts: Mapping[str, np.ndarray],
    names: Sequence[str],
    targets: np.ndarray,
    seen: Sequence[Sequence[int]],
    pop_part: np.ndarray,
    top: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For B histories: (M, B, 1 + M*top) scaled scores of the target (column 0) and of each
    model's ``top`` items, (B, 1 + M*top) bool "counts" (not a duplicate, not seen, not
    padding) and the popularity tie-breaker of each candidate."""
    b = len(targets)
    rows = np.arange(b)[:, None]
    scaled_parts = [scaled(name, parts[name]) for name in names]
    cols = [targets[:, None]]
    for s in scaled_parts:
        masked = s.copy()
        masked[:, 0] = -1.0
        for r, h in enumerate(seen):
            masked[r, np.asarray(h, dtype=np.int64)] = -1.0
        k = min(top, s.shape[1] - 1)
        cols.append(np.argpartition(-masked, k - 1, axis=1)[:, :k])
    cand = np.concatenate(cols, axis=1)
    order = np.argsort(cand, axis=1, kind="stable")  # stable: the target stays first
    sorted_c = np.take_along_axis(cand, order, axis=1)
    dup_sorted = np.zeros(sorted_c.shape, dtype=bool)
    dup_sorted[:, 1:] = sorted_c[:, 1:] == sorted_c[:, :-1]
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    bad = dup | (cand == 0)
    for r, h in enumerate(seen):
        bad[r] |= np.isin(cand[r], np.asarray(h, dtype=np.int64))
    stack = np.stack([s[rows, cand] for s in scaled_parts])
    return stack, ~bad, TIE_BREAK * pop_part[cand]


def tune_weights(
    parts_of: Callable[[Sequence[Sequence[int]]], Mapping[str, np.ndarray]],
    histories: Sequence[Sequence[int]],
    targets: np.ndarray,
    pop: np.ndarray,
    step: float = 0.1,
    top: int = 50,
    chunk: int = 512,
) -> tuple[dict[str, float], dict[str, float]]:
    """The grid weights with the best ndcg@10 on validation, and their recall@10 and ndcg@10
    there (ranked among the candidates, which is all a top 10 can come from).

    ``parts_of(histories)`` gives each model's raw ``(B, n_items + 1)`` scores (column 0 is
    padding); ``targets`` (B,) are the held-out next items of ``histories``, whose own items
    never count as recommendations. Scores are read a ``chunk`` of histories at a time, so
    memory stays at a few candidate columns per history whatever the catalog's size.
    """
    pop_part = popularity_part(pop)
    names: list[str] = []
    stacks, valids, bases = [], [], []
    for i in range(0, len(targets), chunk):
        parts = parts_of(histories[i : i + chunk])
        names = names or sorted(parts)
        st, va, ba = _candidates(
            parts, names, targets[i : i + chunk], histories[i : i + chunk], pop_part, top
        )
        stacks.append(st)
        valids.append(va)
        bases.append(ba)
    if not names:
        return {}, {"recall@10": 0.0, "ndcg@10": 0.0}
    stack = np.concatenate(stacks, axis=1)
    valid, base = np.concatenate(valids), np.concatenate(bases)
    best: tuple[float, float, dict[str, float]] | None = None
    for w in simplex_grid(names, step):
        score = base + np.tensordot(np.array([w[m] for m in names]), stack, axes=1)
        score = np.where(valid, score, -np.inf)
        t = score[:, 0]
        rank = (score[:, 1:] >= t[:, None]).sum(axis=1)
        hit = (rank < K) & np.isfinite(t)
        ndcg = float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean())
        if best is None or ndcg > best[0] + 1e-9:
            best = (ndcg, float(hit.mean()), w)
    assert best is not None
    return best[2], {"recall@10": round(best[1], 4), "ndcg@10": round(best[0], 4)}
