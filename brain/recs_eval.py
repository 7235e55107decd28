"""Offline evaluation of the next-item recommender: ``omnigate eval-recs``.

Reads either
- RecBole sequence files (header ``user_id:token  item_id_list:token_seq  item_id:token``):
  each row is a user's history and a held-out target; or
- a store pack's ``interactions.csv`` (``user_id,sku,event,timestamp``) or a RecBole
  ``.inter`` event log: each user's events in time order, the last item left out.

Models are trained on the histories only and asked for the held-out item: recall@10 (the
target is in the top 10) and ndcg@10, for SASRec, co-occurrence and popularity.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brain.config import BrainConfig
from brain.embeddings import resolve_device
from brain.recs_model import (
    CoOccurrence,
    SASRecConfig,
    auto_epochs,
    blend_personal,
    collapse,
    popularity,
    sasrec_scores,
    train_sasrec,
)

K = 10
# Above this share of "next item already in the history" the data has repeat purchases and
# seen items stay rankable; below it they are excluded from every ranking (RecBole-style).
REPEAT_RATE_LIMIT = 0.01


@dataclass
class EvalData:
    """Histories to train on and (history, target) pairs to test, items as ints 1..n."""

    train: list[list[int]]
    test_histories: list[list[int]]
    test_targets: list[int]
    n_items: int
    item_names: list[str] = field(default_factory=list)  # index i -> original id (0: pad)


def read_eval_data(interactions: Path, items: Path | None = None) -> EvalData:
    """Read either supported format; the format is told by the header line."""
    with interactions.open(encoding="utf-8") as f:
        header = f.readline()
    vocab = _Vocab()
    if items is not None:
        for item in _read_item_ids(items):
            vocab.id(item)
    if "item_id_list" in header:
        return _read_recbole_sequences(interactions, vocab)
    return _read_event_log(interactions, vocab, delimiter="\t" if "\t" in header else ",")


class _Vocab:
    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = [""]

    def id(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
        return i


def _read_item_ids(path: Path) -> list[str]:
    """Item ids of a RecBole ``.item`` file or a ``products.csv`` (first column)."""
    with path.open(encoding="utf-8", newline="") as f:
        header = f.readline()
        delim = "\t" if "\t" in header else ","
        return [row[0] for row in csv.reader(f, delimiter=delim) if row]


def _read_recbole_sequences(path: Path, vocab: _Vocab) -> EvalData:
    train, hists, targets = [], [], []
    with path.open(encoding="utf-8") as f:
        names = [c.split(":")[0] for c in f.readline().rstrip("\n").split("\t")]
        col_hist, col_tgt = names.index("item_id_list"), names.index("item_id")
        for line in f:
            cols = line.rstrip("\n").split("\t")
            hist = [vocab.id(t) for t in cols[col_hist].split()]
            train.append(hist)
            hists.append(hist)
            targets.append(vocab.id(cols[col_tgt]))
    return EvalData(train, hists, targets, len(vocab.names) - 1, vocab.names)


def _read_event_log(path: Path, vocab: _Vocab, delimiter: str) -> EvalData:
    events: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        names = [c.split(":")[0] for c in next(reader)]
        col_user = names.index("user_id")
        col_item = names.index("sku") if "sku" in names else names.index("item_id")
        col_time = names.index("timestamp") if "timestamp" in names else None
        for n, row in enumerate(reader):
            if not row:
                continue
            when = row[col_time] if col_time is not None else ""
            events[row[col_user]].append((when, n, vocab.id(row[col_item])))
    train, hists, targets = [], [], []
    for evs in events.values():
        evs.sort()  # by time, then file order
        seq = collapse([item for _, _, item in evs])
        if len(seq) < 2:
            train.append(seq)  # not testable, still counts for popularity
            continue
        train.append(seq[:-1])
        hists.append(seq[:-1])
        targets.append(seq[-1])
    return EvalData(train, hists, targets, len(vocab.names) - 1, vocab.names)


def repeat_rate(histories: list[list[int]]) -> float:
    """Share of next items that already occurred earlier in the same history."""
    hits = steps = 0
    for h in histories:
        seen: set[int] = set()
        for i, x in enumerate(h):
            if i:
                steps += 1
                hits += x in seen
            seen.add(x)
    return hits / steps if steps else 0.0


def rank_metrics(
    scores: np.ndarray, targets: np.ndarray, histories: list[list[int]], exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user hit@K and ndcg@K for a (B, n_items) score block (column i-1 = item i).
    Ties count against the target (``>=`` would flatter constant scorers the other way)."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude_seen:
        for b, h in enumerate(histories):
            scores[b, np.asarray(h, dtype=np.int64) - 1] = -np.inf
    target_score = scores[np.arange(len(targets)), targets - 1]
    rank = (scores > target_score[:, None]).sum(axis=1)
    hit = (rank < K) & np.isfinite(target_score)
    ndcg = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    return hit.astype(np.float64), ndcg


def eval_recs(
    interactions: Path,
    items: Path | None,
    brain_config: BrainConfig,
    progress: bool = True,
    config: SASRecConfig | None = None,
    max_train_seconds: float | None = 240.0,
) -> dict[str, Any]:
    """Leave-last-out recall@10 / ndcg@10 of the model and its baselines (one JSON object).

    ``model`` is the blend the shop's recommender ranks by (``recs_model.blend_personal``),
    ``sasrec`` the learned model alone. Training stops after ``max_train_seconds`` so the
    command finishes in minutes on a laptop CPU.
    """
    t0 = time.monotonic()
    data = read_eval_data(interactions, items)
    exclude_seen = repeat_rate(data.train) < REPEAT_RATE_LIMIT
    pop = popularity(data.train, data.n_items)
    pop_norm = pop / max(float(pop.max()), 1.0)
    cooc = CoOccurrence.build(data.train, data.n_items)
    cfg = config or SASRecConfig(n_items=data.n_items, epochs=auto_epochs(data.train))
    cfg.n_items = data.n_items
    device = resolve_device(brain_config.device)
    t_train = time.monotonic()
    model = train_sasrec(
        data.train, cfg, device=device, progress=progress, max_seconds=max_train_seconds
    )
    train_s = time.monotonic() - t_train

    names = ("model", "sasrec", "cooccurrence", "popularity")
    sums: dict[str, list[float]] = {m: [0.0, 0.0] for m in names}
    targets = np.asarray(data.test_targets, dtype=np.int64)
    step = 2048
    for i in range(0, len(targets), step):
        hist, tgt = data.test_histories[i : i + step], targets[i : i + step]
        # Popularity breaks ties (and fills the empty rows) of co-occurrence: the fallback.
        logits = sasrec_scores(model, hist)
        co = cooc.scores(hist)
        empty = np.array([not h for h in hist])
        blocks = {
            # What the shop's recommender ranks by (recs_model.blend_personal).
            "model": blend_personal(logits[:, 1:], co[:, 1:], pop[1:], empty),
            "sasrec": logits[:, 1:],
            "cooccurrence": co[:, 1:] + 1e-6 * pop_norm[None, 1:],
            "popularity": np.broadcast_to(pop_norm[1:], (len(hist), len(pop_norm) - 1)),
        }
        for name, block in blocks.items():
            hit, ndcg = rank_metrics(block, tgt, hist, exclude_seen)
            sums[name][0] += float(hit.sum())
            sums[name][1] += float(ndcg.sum())
    n = max(len(targets), 1)
    result: dict[str, Any] = {
        name: {f"recall@{K}": round(s[0] / n, 4), f"ndcg@{K}": round(s[1] / n, 4)}
        for name, s in sums.items()
    }
    result.update(
        n_users=len(targets),
        n_items=data.n_items,
        exclude_seen=exclude_seen,
        train_s=round(train_s, 1),
        total_s=round(time.monotonic() - t0, 1),
        device=device,
    )
    if progress:
        print(f"recs: evaluated {len(targets)} users in {result['total_s']}s", file=sys.stderr)
    return result
