"""The trained next-item bundle (SASRec, EASE, RP3beta, ItemKNN, co-occurrence, title
similarity, popularity, the blend's weights and its reranker): how it is fitted, saved,
found in the cache and asked for scores.

Fitting never looks at what it will be judged on. From the histories it is given it holds
out the last item of up to ``2 * valid_users`` of them, never more than half (the *inner*
split; the other histories stay whole, so training still reads their most recent items):
SASRec stops early on one half of the held-out users, the blend's weights are chosen on the
other half, the reranker (``recs_rerank``) learns from both halves, then the item-to-item
models are refitted on the whole histories. ``omnigate eval-recs`` scores the result on the
file's own targets (the *outer* split), which fitting never sees.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brain.recs_baselines import ItemToItem, TextSimilarity, ease, itemknn, rp3beta
from brain.recs_blend import K, tune_weights, weighted_sum
from brain.recs_model import (
    CoOccurrence,
    History,
    SASRec,
    SASRecConfig,
    popularity,
    sasrec_scores,
    train_sasrec,
)
from brain.recs_rerank import Reranker, on_scale

if TYPE_CHECKING:
    from brain.config import BrainConfig
    from brain.store import Interaction, ProductRecord, StoreBackend

# Bump when the bundle's content or training changes, so cached bundles are not reused.
BUNDLE_VERSION = "blend-7"
# SASRec's share of the 10-minute fitting budget on 2 CPU cores (the item-to-item models
# and the blend's tuning take the rest); early stopping usually ends it sooner.
SASREC_SECONDS = 300.0


@dataclass
class FitConfig:
    """Hyper-parameters of every model, chosen on the inner split of the Amazon Video Games
    histories (see ``docs`` in the report of issue 15); the blend's weights are fitted per
    shop."""

    ease_l2: float = 100.0
    ease_min_count: int = 5  # rarer items: noisy EASE rows, and a smaller dense Gram
    ease_max_items: int = 12_000  # dense Gram of at most 576 MB (float32)
    ease_decay: float = 0.7
    rp3_alpha: float = 0.3
    rp3_beta: float = 0.1
    rp3_decay: float = 0.7
    knn_shrink: float = 100.0
    knn_alpha: float = 0.5
    knn_decay: float = 0.7
    text_decay: float = 0.3
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)
    valid_users: int = 4000  # per half of the inner split (early stopping; blend weights)
    seed: int = 0


@dataclass
class RecsBundle:
    """Everything the recommender loads."""

    model: SASRec | None
    cooc: CoOccurrence
    ease: ItemToItem
    rp3: ItemToItem
    knn: ItemToItem | None
    pop: np.ndarray  # (n_items + 1,)
    weights: dict[str, float]  # blend weights by model name (``recs_blend.blend``)
    meta: dict[str, Any]  # e.g. {"quick": bool, "trained_s": float, "validation": ...}
    text: TextSimilarity | None = None  # title similarity, when the items' titles were given
    reranker: Reranker | None = None  # the blend's second stage, for logs large enough

    def parts(
        self, histories: Sequence[History], items: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each model's raw ``(B, n_items + 1)`` next-item scores for ``histories``, or
        ``(B, len(items))`` for the item ids ``items`` only."""
        # The item-to-item members' rows are sparse: computed whole, then read at ``items``.
        full = {
            "cooccurrence": self.cooc.scores(histories),
            "ease": self.ease.scores(histories),
            "rp3beta": self.rp3.scores(histories),
        }
        if self.knn is not None:
            full["itemknn"] = self.knn.scores(histories)
        if self.text is not None:
            full["text"] = self.text.scores(histories)
        out = full if items is None else {k: v[:, items] for k, v in full.items()}
        if self.model is not None:  # dense logits: only the wanted ones are computed
            out["sasrec"] = sasrec_scores(self.model, histories, items)
        return out

    def scores(self, histories: Sequence[History], items: np.ndarray | None = None) -> np.ndarray:
        """What the shop ranks by: ``(B, n_items + 1)`` scores of 0..1 (column 0, padding,
        is meaningless), or ``(B, len(items))`` for the item ids ``items`` only."""
        return self.ranked(self.parts(histories, items), histories, items)

    def ranked(
        self,
        parts: dict[str, np.ndarray],
        histories: Sequence[History],
        items: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scores`` from the members' ``parts(histories, items)``: the weighted sum,
        re-ranked where the bundle has a reranker."""
        pop = self.pop if items is None else self.pop[items]
        empty = np.array([not h for h in histories], dtype=bool)
        # Each member the weighted sum or the reranker reads, on the 0..1 scale once.
        members = self.reranker.members if self.reranker is not None else ()
        used = [k for k in parts if self.weights.get(k, 0.0) > 0 or k in members]
        scores = on_scale(parts, used)
        base = weighted_sum(scores, self.weights, pop, empty, len(histories))
        if self.reranker is None or not parts:
            return base
        ids = np.arange(len(self.pop)) if items is None else np.asarray(items)
        return self.reranker.rank(scores, histories, ids, pop, base)

    def save(self, path: Path) -> None:
        """Write atomically (several workers may start at once)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "config": asdict(self.model.cfg) if self.model else None,
            "state": self.model.state_dict() if self.model else None,
            "cooc": self.cooc.state(),
            "ease": self.ease.state(),
            "rp3": self.rp3.state(),
            "knn": self.knn.state() if self.knn is not None else None,
            "text": self.text.state() if self.text is not None else None,
            "reranker": self.reranker.state() if self.reranker is not None else None,
            "pop": torch.from_numpy(self.pop),
            "weights": self.weights,
            "meta": self.meta,
        }
        tmp = path.with_suffix(f".tmp{time.monotonic_ns()}")
        torch.save(blob, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> RecsBundle:
        """Inverse of ``save``; the model is put on ``device`` in eval mode."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = None
        if blob["config"] is not None:
            model = SASRec(SASRecConfig(**blob["config"]))
            model.load_state_dict(blob["state"])
            model = model.to(device).eval()
        return cls(
            model,
            CoOccurrence.from_state(blob["cooc"]),
            ItemToItem.from_state(blob["ease"]),
            ItemToItem.from_state(blob["rp3"]),
            ItemToItem.from_state(blob["knn"]) if blob.get("knn") is not None else None,
            blob["pop"].numpy(),
            dict(blob["weights"]),
            blob["meta"],
            TextSimilarity.from_state(blob["text"]) if blob.get("text") is not None else None,
            Reranker.from_state(blob["reranker"]) if blob.get("reranker") is not None else None,
        )


# --- fitting ------------------------------------------------------------------------------


def _item_models(
    seqs: Sequence[History], n_items: int, cfg: FitConfig
) -> tuple[CoOccurrence, ItemToItem, ItemToItem, ItemToItem, dict[str, float]]:
    """Co-occurrence, EASE, RP3beta and ItemKNN fitted on ``seqs``, and the seconds each
    took."""
    times: dict[str, float] = {}
    t = time.monotonic()
    cooc = CoOccurrence.build(seqs, n_items)
    times["cooccurrence"] = time.monotonic() - t
    t = time.monotonic()
    e = ease(
        seqs,
        n_items,
        l2=cfg.ease_l2,
        min_count=cfg.ease_min_count,
        max_items=cfg.ease_max_items,
        decay=cfg.ease_decay,
    )
    times["ease"] = time.monotonic() - t
    t = time.monotonic()
    r = rp3beta(seqs, n_items, alpha=cfg.rp3_alpha, beta=cfg.rp3_beta, decay=cfg.rp3_decay)
    times["rp3beta"] = time.monotonic() - t
    t = time.monotonic()
    k = itemknn(seqs, n_items, shrink=cfg.knn_shrink, alpha=cfg.knn_alpha, decay=cfg.knn_decay)
    times["itemknn"] = time.monotonic() - t
    return cooc, e, r, k, times


def ranking_metrics(
    scores: np.ndarray,
    targets: np.ndarray,
    histories: Sequence[History],
    exclude_seen: bool = True,
) -> tuple[float, float]:
    """Mean recall@10 and ndcg@10 of ``(B, n_items + 1)`` scores (column 0 padding), the
    history's own items excluded unless ``exclude_seen`` is false. Ties count against the
    target: most items score zero in a sparse model, and a tie in its favour would make a
    hit of every target when fewer than 10 items score above zero."""
    s = np.array(scores, dtype=np.float32, copy=True)
    s[:, 0] = -np.inf
    if exclude_seen:
        for b, h in enumerate(histories):
            s[b, np.asarray(h, dtype=np.int64)] = -np.inf
    t = s[np.arange(len(targets)), targets]
    rank = (s >= t[:, None]).sum(axis=1) - 1
    hit = (rank < K) & np.isfinite(t)
    ndcg = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    return float(hit.mean()) if len(t) else 0.0, float(ndcg.mean()) if len(t) else 0.0


def inner_split(
    seqs: Sequence[History], valid_users: int, seed: int = 0
) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """The inner split of ``seqs``: (histories to train on, early-stopping users, blend
    users). Up to ``valid_users`` users per half, drawn at random among the histories of two
    or more items, lose their last item, which is what they are validated on; every other
    history stays whole. A small log holds out at most half of them."""
    rng = np.random.default_rng(seed)
    held = rng.permutation(np.flatnonzero([len(s) >= 2 for s in seqs]))
    # At most half of the log is held out (a single user each below 8): the other half keeps
    # its last items, so what the held-out users are validated on is still seen in training.
    half = min(valid_users, len(held) // 2, max(1, len(held) // 4))
    held_out = set(held[: 2 * half].tolist())
    train = [list(s[:-1]) if u in held_out else list(s) for u, s in enumerate(seqs)]
    return train, held[:half], held[half : 2 * half]


def fit_bundle(
    seqs: Sequence[History],
    n_items: int,
    cfg: FitConfig | None = None,
    device: str = "cpu",
    max_seconds: float | None = SASREC_SECONDS,
    progress: bool = False,
    quick: bool = False,
    texts: Sequence[str] | None = None,
) -> RecsBundle:
    """Fit every model and the blend's weights on ``seqs`` (see the module docstring).

    ``max_seconds`` bounds SASRec's training; ``quick`` marks a bundle trained in a hurry
    at a worker's start-up (``omnigate recs train`` replaces it). ``texts`` (item ``i``'s
    title at ``texts[i]``, ``texts[0]`` unused) adds the title-similarity model.
    """
    cfg = cfg or FitConfig()
    start = time.monotonic()
    text = None
    if texts is not None:
        if len(texts) != n_items + 1:
            raise ValueError(f"texts: {len(texts)} given for {n_items} items (+ padding)")
        text = TextSimilarity.fit(texts, decay=cfg.text_decay)
    inner_train, stop_users, blend_users = inner_split(seqs, cfg.valid_users, cfg.seed)

    def split(users: np.ndarray) -> tuple[list[History], np.ndarray]:
        return [inner_train[u] for u in users], np.asarray(
            [seqs[u][-1] for u in users], dtype=np.int64
        )

    stop_h, stop_t = split(stop_users)
    blend_h, blend_t = split(blend_users)

    def log(msg: str) -> None:
        if progress:
            print(f"recs: {msg} ({time.monotonic() - start:.1f}s)", file=sys.stderr, flush=True)

    model: SASRec | None = None
    if any(len(s) >= 2 for s in inner_train):
        scfg = SASRecConfig(**{**asdict(cfg.sasrec), "n_items": n_items, "seed": cfg.seed})

        def validate(m: SASRec) -> float:
            return ranking_metrics(sasrec_scores(m, stop_h), stop_t, stop_h)[1]

        model = train_sasrec(
            inner_train,
            scfg,
            device,
            progress=progress,
            max_seconds=max_seconds,
            validate=validate if len(stop_h) else None,
        )
        log(f"SASRec: {model.trained}")
    cooc, e, r, k, _ = _item_models(inner_train, n_items, cfg)
    pop = popularity(inner_train, n_items)
    log("item-to-item models on the inner split")
    inner = RecsBundle(model, cooc, e, r, k, pop, {}, {}, text)
    validation: dict[str, dict[str, float]] = {}
    if len(blend_h):
        # Each member's own figures are taken from the same score blocks the tuning reads.
        sums: dict[str, np.ndarray] = {}
        tie = 1e-6 * pop / max(float(pop.max()), 1.0)
        seen_at = 0

        def parts_of(h: Sequence[History]) -> dict[str, np.ndarray]:
            nonlocal seen_at
            parts = inner.parts(h)
            t = blend_t[seen_at : seen_at + len(h)]
            seen_at += len(h)
            for name, block in parts.items():
                # Popularity breaks a member's ties (they score most items zero).
                metrics = ranking_metrics(block + tie[None, :], t, h)
                sums.setdefault(name, np.zeros(2))[:] += np.asarray(metrics) * len(t)
            return parts

        # Score blocks of ~20M floats per model at a time, whatever the catalog's size.
        chunk = int(min(1024, max(32, 2e7 // (n_items + 1))))
        weights, validation["linear"] = tune_weights(parts_of, blend_h, blend_t, pop, chunk=chunk)
        for name, v in sums.items():
            validation[name] = {
                "recall@10": round(float(v[0]) / len(blend_t), 4),
                "ndcg@10": round(float(v[1]) / len(blend_t), 4),
            }
    else:  # too few histories to hold any out: an even mix of the item-to-item models
        weights = {"cooccurrence": 0.3, "ease": 0.2, "rp3beta": 0.2, "itemknn": 0.1, "text": 0.2}
    log(f"blend weights {weights}")
    # A quick bundle (a worker's start-up) ranks by the weighted sum: the reranker's pass over
    # the held-out users would double its wait on a large catalog.
    reranker = None
    if not quick:
        reranker = Reranker.fit(
            inner.parts, stop_h + blend_h, np.concatenate([stop_t, blend_t]), pop, seed=cfg.seed
        )
        log("reranker trained" if reranker else "too few held-out users for a reranker")
    cooc, e, r, k, times = _item_models(seqs, n_items, cfg)
    log("item-to-item models refitted on the whole histories")
    meta = {
        "quick": quick,
        "trained_s": round(time.monotonic() - start, 1),
        "fit_s": {k: round(v, 1) for k, v in times.items()},
        "sasrec": model.trained if model is not None else None,
        "validation": validation,
        "validation_users": len(blend_h),
        "reranker": reranker is not None,
    }
    pop = popularity(seqs, n_items)
    return RecsBundle(model, cooc, e, r, k, pop, weights, meta, text, reranker)


# --- a shop's interaction log ----------------------------------------------------------------


def collapse(seq: Sequence[int]) -> list[int]:
    """Drop immediate repeats (a view, then cart, then purchase of one item is one step)."""
    return [x for i, x in enumerate(seq) if i == 0 or x != seq[i - 1]]


def catalog_sequences(
    interactions: Sequence[Interaction], by_sku: dict[str, int]
) -> list[list[int]]:
    """Each user's items in time order as model ids (catalog index + 1); SKUs no longer in
    the catalog are skipped."""
    per_user: dict[str, list[tuple[str, int, int]]] = {}
    for n, it in enumerate(interactions):
        i = by_sku.get(it.sku)
        if i is not None:
            per_user.setdefault(it.user_id, []).append((it.timestamp, n, i + 1))
    return [collapse([item for _, _, item in sorted(evs)]) for evs in per_user.values()]


# What the title-similarity model reads of a product (a store pack's columns, a RecBole item
# file's where it has them); descriptions are left out, their shared boilerplate ("free
# delivery", "machine washable") would link unrelated products.
TEXT_FIELDS = ("title", "brand", "category")


def product_texts(products: Sequence[ProductRecord]) -> list[str]:
    """Each product's ``TEXT_FIELDS`` joined, as model ids (``[0]`` is padding)."""
    return ["", *(" ".join(getattr(p, f) for f in TEXT_FIELDS) for p in products)]


def bundle_path(
    config: BrainConfig, skus: Sequence[str], seqs: Sequence[History], texts: Sequence[str]
) -> Path:
    """Where the bundle for this catalog, its texts and interaction log is cached."""
    digest = hashlib.sha256(BUNDLE_VERSION.encode())
    digest.update("\x00".join(skus).encode())
    digest.update("\x02".join(texts).encode())
    for s in seqs:
        digest.update(b"\x01" + np.asarray(s, dtype=np.int64).tobytes())
    return config.cache_dir / "recs" / f"{digest.hexdigest()[:32]}.pt"


def auto_epochs(seqs: Sequence[History], budget_positions: float = 1e7) -> int:
    """At most enough passes to see ~``budget_positions`` training positions (many over a
    small shop log, fewer over a large one); early stopping usually ends training sooner."""
    positions = sum(max(len(s) - 1, 0) for s in seqs)
    return int(min(max(round(budget_positions / max(positions, 1)), 5), 200))


def shop_fit_config(seqs: Sequence[History]) -> FitConfig:
    """The fit configuration for a shop's log: defaults, epochs sized to the log."""
    return FitConfig(sasrec=SASRecConfig(epochs=auto_epochs(seqs)))


def train_recs(
    config: BrainConfig,
    progress: bool = True,
    store: StoreBackend | None = None,
    max_seconds: float | None = SASREC_SECONDS,
) -> Path:
    """Fit the next-item bundle on the interactions of ``store`` (by default the configured
    one) and cache it where ``Recommender`` looks (``omnigate recs train``); ``max_seconds``
    bounds SASRec's training. Returns the file written."""
    from brain.embeddings import resolve_device
    from brain.store import load_store

    store = store or load_store(config.store)
    products = store.products()
    skus = [p.sku for p in products]
    texts = product_texts(products)
    seqs = catalog_sequences(store.interactions(), {s: i for i, s in enumerate(skus)})
    if progress:
        n = sum(len(s) for s in seqs)
        print(f"recs: {len(seqs)} users, {n} interactions, {len(skus)} products", file=sys.stderr)
    device = resolve_device(config.device)
    cfg = shop_fit_config(seqs)
    bundle = fit_bundle(seqs, len(skus), cfg, device, max_seconds, progress, texts=texts)
    path = bundle_path(config, skus, seqs, texts)
    bundle.save(path)
    if progress:
        print(f"recs: saved {path}", file=sys.stderr)
    return path
