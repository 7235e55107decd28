"""Recommendation latency on a synthetic 100,000-product catalog (``make bench``).

Product embeddings: each distinct title pattern ("pro ultra running shoe", 2,000 of them) is
embedded by the real model, and each product gets its pattern's vector plus noise standing
in for its brand and description (embedding 100k texts with MiniLM on a CPU takes tens of
minutes and measures the embedder, not the index). So requests meet the cosines of a real
catalog: "light running shoes" comes close to the running shoes, and the relevance decision
is what it would be in a shop. Queries are real texts, embedded by the real model once.

Compared in the same run:
- ours: vectorised filter masks, one matmul over the candidates, argpartition top-k;
- brute force: python-side filtering over the product records, full matmul, full argsort.
And the whole of what the chat's product flow asks of the recommender (``search``: parse, embed
the query, filter, personal scores from a session history through the bundle's reranker, rank;
then ``relevant``), p50/p99,
first with the query's embedding computed, then found in the query cache (follow-ups).
Printed only; no timing thresholds.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from brain.catalog_query import CatalogQuery, parse_query
from brain.config import limit_cpu_threads
from brain.embeddings import Embedder, get_embedder
from brain.recommender import CatalogIndex, Recommender
from brain.recs_bundle import train_recs
from brain.store import (
    Interaction,
    OrderRecord,
    Passage,
    ProductRecord,
    ShopInfo,
    StoreBackend,
)
from gateway.settings import load_settings

pytestmark = pytest.mark.bench

N_PRODUCTS = 100_000
N_QUERIES = 200
CATEGORIES = [
    "running shoes", "hiking boots", "rain jackets", "t-shirts", "backpacks", "tents",
    "sleeping bags", "headphones", "chargers", "mugs", "bedding", "lamps", "watches",
    "sunglasses", "yoga mats", "bicycles", "helmets", "kettles", "blenders", "toys",
]  # fmt: skip
ADJ = ["light", "pro", "classic", "urban", "trail", "eco", "max", "mini", "ultra", "soft"]


class SyntheticStore(StoreBackend):
    def __init__(self, products: list[ProductRecord], interactions: list[Interaction]) -> None:
        self._p, self._i = products, interactions

    @property
    def info(self) -> ShopInfo:
        return ShopInfo("Bench", "EUR", r"B-\d+", "b@example.com", "always")

    def products(self) -> list[ProductRecord]:
        return self._p

    def product(self, sku: str) -> ProductRecord | None:
        return None

    def order(self, order_id: str) -> OrderRecord | None:
        return None

    def orders_for_email(self, email: str) -> list[OrderRecord]:
        return []

    def cancel_order(self, order_id: str) -> OrderRecord:
        raise KeyError(order_id)

    def change_address(self, order_id: str, address: str) -> OrderRecord:
        raise KeyError(order_id)

    def passages(self) -> list[Passage]:
        return []

    def interactions(self) -> list[Interaction]:
        return self._i


def _catalog(rng: random.Random) -> list[ProductRecord]:
    brands = [f"Brand{i:03d}" for i in range(200)]
    out = []
    for i in range(N_PRODUCTS):
        cat = rng.choice(CATEGORIES)
        brand = rng.choice(brands)
        out.append(
            ProductRecord(
                sku=f"P{i:06d}",
                title=f"{brand} {rng.choice(ADJ)} {rng.choice(ADJ)} {cat[:-1]}",
                description="",
                category=cat,
                price=round(rng.lognormvariate(4.0, 0.8), 2),
                stock=0 if rng.random() < 0.1 else rng.randint(1, 50),
                brand=brand,
            )
        )
    return out


def _interactions(rng: random.Random) -> list[Interaction]:
    """5,000 customers walking 500 product lines: what follows a product repeats across
    customers, as in a shop's log, so the bundle learns its reranker."""
    lines = [rng.randrange(N_PRODUCTS - 20) for _ in range(500)]
    out = []
    for u in range(5000):
        start = rng.choice(lines)
        for k in range(rng.randint(2, 8)):
            out.append(Interaction(f"u{u}", f"P{start + k:06d}", "view", f"2025-01-01T{k:02d}"))
    return out


def _queries(rng: random.Random) -> list[str]:
    phrases = ["under {a}", "below ${a}", "between {a} and {b}", "over {a}", "", "around {a}"]
    out = []
    for _ in range(N_QUERIES):
        a = rng.choice([20, 40, 60, 100, 150, 300])
        phrase = rng.choice(phrases).format(a=a, b=a * 2)
        out.append(f"{rng.choice(ADJ)} {rng.choice(CATEGORIES)} {phrase}".strip())
    return out


def _embeddings(products: list[ProductRecord], embedder: Embedder) -> np.ndarray:
    """(N, 384) unit rows: the embedding of each title without its brand, plus noise."""
    patterns = [p.title.split(" ", 1)[1] for p in products]
    distinct = sorted(set(patterns))
    pattern_vecs = embedder.encode(distinct)
    row = {t: i for i, t in enumerate(distinct)}
    vecs = pattern_vecs[[row[t] for t in patterns]]
    noise = np.random.default_rng(0).standard_normal(vecs.shape).astype(np.float32)
    vecs = vecs + 0.5 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def _brute_force(
    products: list[ProductRecord], emb: np.ndarray, q: CatalogQuery, qvec: np.ndarray, k: int
) -> list[int]:
    scores = emb @ qvec
    order = np.argsort(-scores)
    cats = set(q.categories)
    out = []
    for i in order:
        p = products[i]
        if p.stock > 0 and q.price_ok(p.price) and (not cats or p.category in cats):
            out.append(int(i))
            if len(out) == k:
                break
    return out


def _pct(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def test_bench_recommend_100k(tmp_path: Path) -> None:
    settings = load_settings(OMNIGATE_CACHE_DIR=str(tmp_path), OMNIGATE_DEVICE="cpu")
    limit_cpu_threads(settings.torch_threads)  # as in a worker process
    rng = random.Random(0)
    products = _catalog(rng)
    embedder = get_embedder("cpu")
    vecs = _embeddings(products, embedder)
    t = time.perf_counter()
    index = CatalogIndex.from_embeddings(products, vecs)
    build_s = time.perf_counter() - t

    texts = _queries(rng)
    parsed = [parse_query(x, index.categories, index.brands, index.terms) for x in texts]
    qvecs = embedder.encode([p.text or "product" for p in parsed])

    ours, brute = [], []
    for q, qv in zip(parsed, qvecs, strict=True):
        t = time.perf_counter()
        got = index.search(q, qv, 10)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        want = _brute_force(products, vecs, q, qv, 10)
        brute.append(time.perf_counter() - t)
        # Same answer (exact search); compared by score, as float rounding may swap ties.
        assert np.allclose(vecs[got] @ qv, vecs[want] @ qv, atol=1e-5)

    config = settings.brain_config()
    store = SyntheticStore(products, _interactions(rng))
    train_recs(config, progress=False, store=store, max_seconds=30.0)  # the full bundle
    t = time.perf_counter()
    rec = Recommender(store, embedder, config, index=index)
    init_s = time.perf_counter() - t
    assert rec.bundle is not None and rec.bundle.reranker is not None
    passes: list[list[float]] = [[], []]
    full_passes = 0  # requests whose relevance needed the pass over the whole catalog
    for times in passes:  # 1st pass embeds each query; 2nd finds it in the query cache
        for text in texts:
            slots: dict[str, Any] = {"rec_history": [f"P{rng.randrange(N_PRODUCTS):06d}"]}
            t = time.perf_counter()
            found = rec.search(text, slots, limit=5)
            _ = found.relevant, found.products
            times.append(time.perf_counter() - t)
            full_passes += "relevance" in vars(found)  # the cached_property was computed

    also = []
    for _ in range(N_QUERIES):
        t = time.perf_counter()
        rec.also_bought(f"P{rng.randrange(N_PRODUCTS):06d}")
        also.append(time.perf_counter() - t)

    o50, o99 = _pct(ours)
    b50, b99 = _pct(brute)
    f50, f99 = _pct(passes[0])
    w50, w99 = _pct(passes[1])
    _, a99 = _pct(also)
    print(
        f"\nrecs bench, {N_PRODUCTS:,} products, {N_QUERIES} queries "
        f"(index built in {build_s:.1f}s, recommender ready in {init_s:.1f}s)\n"
        f"  search, ours (mask + matmul + argpartition): p50 {o50:.2f} ms  p99 {o99:.2f} ms\n"
        f"  search, brute force (matmul + argsort + python filter): "
        f"p50 {b50:.2f} ms  p99 {b99:.2f} ms\n"
        f"  speed-up: p50 x{b50 / o50:.1f}  p99 x{b99 / o99:.1f}\n"
        f"  Recommender.search + relevant end to end (parse, embed, filter, personal, rank): "
        f"p50 {f50:.2f} ms  p99 {f99:.2f} ms\n"
        f"  same, query embedding cached (follow-ups): p50 {w50:.2f} ms  p99 {w99:.2f} ms"
    )
    print(
        json.dumps(
            {
                "bench": "recs_recommend_100k",
                "products": N_PRODUCTS,
                "search_p99_ms": round(o99, 3),
                "baseline_brute_force_p99_ms": round(b99, 3),
                "ratio_p50": round(b50 / o50, 2),
                "ratio_p99": round(b99 / o99, 2),
                "recommend_p50_ms": round(f50, 3),
                "recommend_p99_ms": round(f99, 3),
                "recommend_cached_p99_ms": round(w99, 3),
                "also_bought_p99_ms": round(a99, 3),
                "relevance_full_pass_share": round(full_passes / (2 * N_QUERIES), 3),
                "recommender_ready_s": round(init_s, 1),
            }
        )
    )
