"""Offline evaluation of the next-item recommender: ``omnigate eval-recs``.

Reads either
- RecBole sequence files (header ``user_id:token  item_id_list:token_seq  item_id:token``):
  each row is a user's history and a held-out target; or
- a store pack's ``interactions.csv`` (``user_id,sku,event,timestamp``) or a RecBole
  ``.inter`` event log: each user's events in time order, the last item left out.

Models are fitted on the histories only (``recs_bundle.fit_bundle``, which tunes itself on
an inner split carved from those histories) and asked for the held-out item: recall@10 (the
target is in the top 10) and ndcg@10 of the blend (``model``: the weighted sum re-ranked,
what the shop ranks by), of the weighted sum alone (``linear``), of each of its members
(SASRec, EASE, RP3beta, ItemKNN, co-occurrence, title similarity when ``items`` has
titles) and of popularity.
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
from brain.recs_blend import blend
from brain.recs_bundle import (
    SASREC_SECONDS,
    TEXT_FIELDS,
    FitConfig,
    collapse,
    fit_bundle,
    ranking_metrics,
    shop_fit_config,
)

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
    item_texts: list[str] | None = None  # index i -> title (0: pad), when an item file has them


def read_eval_data(interactions: Path, items: Path | None = None) -> EvalData:
    """Read either supported format; the format is told by the header line."""
    with interactions.open(encoding="utf-8") as f:
        header = f.readline()
    vocab = _Vocab()
    texts: dict[str, str] = {}
    if items is not None:
        texts = _read_item_texts(items)
        for item in texts:
            vocab.id(item)
    if "item_id_list" in header:
        data = _read_recbole_sequences(interactions, vocab)
    else:
        data = _read_event_log(interactions, vocab, delimiter="\t" if "\t" in header else ",")
    if any(texts.values()):
        data.item_texts = ["", *(texts.get(name, "") for name in data.item_names[1:])]
    return data


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


def _read_item_texts(path: Path) -> dict[str, str]:
    """Item id (first column) -> its ``TEXT_FIELDS`` where the file has them: a RecBole
    ``.item`` file (``title:token_seq``) or a store pack's ``products.csv``."""
    with path.open(encoding="utf-8", newline="") as f:
        header = f.readline()
        delim = "\t" if "\t" in header else ","
        names = [c.split(":")[0] for c in next(csv.reader([header], delimiter=delim))]
        cols = [names.index(c) for c in TEXT_FIELDS if c in names]
        return {
            row[0]: " ".join(row[c] for c in cols if c < len(row))
            for row in csv.reader(f, delimiter=delim)
            if row
        }


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


def eval_recs(
    interactions: Path,
    items: Path | None,
    brain_config: BrainConfig,
    progress: bool = True,
    config: FitConfig | None = None,
    max_train_seconds: float | None = SASREC_SECONDS,
    seed: int = 0,
) -> dict[str, Any]:
    """Leave-last-out recall@10 / ndcg@10 of the blend and every model (one JSON object).

    ``model`` is what the shop's recommender ranks by (``RecsBundle.scores``). Also
    reported: the blend's weights, each model's figures on the inner validation split they
    were tuned on, SASRec's epochs and the fitting time. ``max_train_seconds`` bounds
    SASRec's training; ``seed`` changes SASRec's initialisation and the validation users.
    """
    t0 = time.monotonic()
    data = read_eval_data(interactions, items)
    exclude_seen = repeat_rate(data.train) < REPEAT_RATE_LIMIT
    cfg = config or shop_fit_config(data.train)
    cfg.seed = seed
    device = resolve_device(brain_config.device)
    bundle = fit_bundle(
        data.train,
        data.n_items,
        cfg,
        device,
        max_seconds=max_train_seconds,
        progress=progress,
        texts=data.item_texts,
    )
    fit_s = time.monotonic() - t0

    names = (
        "model",
        "linear",
        "sasrec",
        "ease",
        "rp3beta",
        "itemknn",
        "cooccurrence",
        "text",
        "popularity",
    )
    sums: dict[str, list[float]] = {}
    targets = np.asarray(data.test_targets, dtype=np.int64)
    tie = 1e-6 * bundle.pop / max(float(bundle.pop.max()), 1.0)
    step = 512  # score blocks of ~9M floats per model: the blend's temporaries stay small
    for i in range(0, len(targets), step):
        hist, tgt = data.test_histories[i : i + step], targets[i : i + step]
        parts = bundle.parts(hist)
        empty = np.array([not h for h in hist], dtype=bool)
        blocks = {
            "model": bundle.ranked(parts, hist),
            "linear": blend(parts, bundle.weights, bundle.pop, empty),
        }
        # Members alone, popularity breaking their ties (they score most items zero).
        blocks.update({k: v + tie[None, :] for k, v in parts.items()})
        blocks["popularity"] = np.broadcast_to(tie * 1e6, (len(hist), len(tie)))
        for name, block in blocks.items():
            recall, ndcg = ranking_metrics(block, tgt, hist, exclude_seen)
            acc = sums.setdefault(name, [0.0, 0.0])
            acc[0] += recall * len(tgt)
            acc[1] += ndcg * len(tgt)
    n = max(len(targets), 1)
    result: dict[str, Any] = {
        name: {"recall@10": round(sums[name][0] / n, 4), "ndcg@10": round(sums[name][1] / n, 4)}
        for name in names
        if name in sums
    }
    result.update(
        n_users=len(targets),
        n_items=data.n_items,
        exclude_seen=exclude_seen,
        blend_weights=bundle.weights,
        reranker=bundle.reranker is not None,
        validation=bundle.meta["validation"],
        validation_users=bundle.meta["validation_users"],
        sasrec_training=bundle.meta["sasrec"],
        fit_s=round(fit_s, 1),
        total_s=round(time.monotonic() - t0, 1),
        seed=seed,
        device=device,
    )
    if progress:
        print(f"recs: evaluated {len(targets)} users in {result['total_s']}s", file=sys.stderr)
    return result
