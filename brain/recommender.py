"""The product recommender: "running shoes under 100", "something like the last one but
cheaper", and "customers who bought this also bought".

How a request is answered (``Recommender.recommend``):

1. ``catalog_query.parse_query`` reads category, brand and price window; a follow-up
   ("cheaper", "under 50 then", "like that one") is merged into the previous request kept in
   ``slots["last_query"]``.
2. Hard filters, exact and vectorised over the catalog (``CatalogIndex.mask``): in stock,
   price window, category, brand; "cheaper" adds "below the reference price".
3. Ranking of what passes, ``score = relevance + PERSONAL_WEIGHT * personal``:
   - relevance: cosine similarity (all-MiniLM-L6-v2) of the request's words, and for
     "similar" of the reference products, with each product's text;
   - personal (0..1): the session's history (past orders, products mentioned, cards clicked)
     scored by the next-item models (SASRec, EASE, RP3beta, co-occurrence), each scaled to
     0..1 over the candidates and mixed by the weights the bundle chose on held-out
     purchases (``recs_bundle.fit_bundle``), then, for a shop with a log large enough,
     re-ranked by the bundle's learning-to-rank model (``recs_rerank``); an empty history
     ranks by popularity.
   With no words and no reference ("recommend me something under 50") relevance is absent
   and the personal score alone ranks; with an empty session that is popularity.
4. ``slots`` remember the request and the products shown, for the next turn.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from brain.catalog_query import (
    STOPWORDS,
    CatalogQuery,
    category_terms,
    parse_query,
    singular,
    tokens,
    word_forms,
)
from brain.config import BrainConfig
from brain.embeddings import Embedder, resolve_device
from brain.product_facts import (
    NUMERIC_KINDS,
    SIZE_KINDS,
    Constraint,
    Fact,
    attribute_values,
    comparative,
    extract,
)
from brain.product_names import NameIndex
from brain.recs_blend import blend
from brain.recs_bundle import (
    RecsBundle,
    bundle_path,
    catalog_sequences,
    fit_bundle,
    product_texts,
    shop_fit_config,
)
from brain.recs_model import GATHER_MAX_SHARE
from brain.store import ProductRecord, StoreBackend
from channels.schema import Product

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# How much the personal score may reorder products of similar relevance. Cosine scores of
# products that all match a request lie within ~0.1 of each other, so 0.15 lets a strong
# personal signal (a just-clicked item's neighbours) move them without beating relevance.
PERSONAL_WEIGHT = 0.15
# Slots kept bounded (the session lives in Redis).
MAX_VIEWED = 20
MAX_HISTORY = 50
QUICK_TRAIN_SECONDS = 5.0
QUERY_CACHE_SIZE = 1024
# A request is about something the shop sells when its words come at least this close
# (cosine) to some product's text. Measured on labelled requests for two packs
# (tests/data/relevance/*.csv, tests/unit/test_relevance.py prints precision and recall).
RELEVANCE_THRESHOLD = 0.45
# ... or at least this close when one of its words (or a synonym) is a word of the catalog's
# titles, categories or brands ("a rucksack" → "backpack", "a throw for my couch").
RELEVANCE_LEXICAL_THRESHOLD = 0.3
# "The lightest tent": the superlative orders the products this close to the best match,
# so that "the lightest" of outdoor gear is still a tent.
SUPERLATIVE_MARGIN = 0.12
# Weight of the share of the request's words a title has (exact words beat near meanings
# among products of similar cosine: "trail running shoes" are trail shoes first).
TITLE_WEIGHT = 0.1


# --- the catalog index ------------------------------------------------------------------------


def product_text(p: ProductRecord) -> str:
    """What is embedded for a product."""
    parts = [p.title, p.brand, p.category, p.description]
    return ". ".join(s.strip() for s in parts if s and s.strip())


@dataclass
class CatalogIndex:
    """Products as arrays: embeddings for ranking, prices/stock/ids for exact filters."""

    products: list[ProductRecord]
    emb: np.ndarray  # (N, 384) float32, unit rows
    price: np.ndarray  # (N,) float64
    stock: np.ndarray  # (N,) int64
    category_id: np.ndarray  # (N,) int32 into ``categories``
    brand_id: np.ndarray  # (N,) int32 into ``brands`` ("" is a brand id too)
    categories: list[str]
    brands: list[str]  # non-empty brand names
    brand_index: dict[str, int]
    terms: dict[str, str]  # catalog words -> their category (catalog_query.category_terms)
    by_sku: dict[str, int]
    facts: list[list[Fact]]  # what each row states (product_facts.extract)
    # numeric kind or generic unit ("GB", "GB ram") -> (N,) float64, NaN = unstated
    attrs: dict[str, np.ndarray]
    names: NameIndex  # loose product-name matching
    vocab: frozenset[str]  # singular words of titles, categories and brands
    title_words: dict[str, np.ndarray]  # singular title word -> rows whose title has it

    @classmethod
    def from_embeddings(cls, products: Sequence[ProductRecord], emb: np.ndarray) -> CatalogIndex:
        """Index ``products`` whose embeddings are already computed (row i = product i)."""
        products = list(products)
        categories = sorted({p.category for p in products})
        brands = sorted({p.brand for p in products})
        cat_ix = {c: i for i, c in enumerate(categories)}
        brand_ix = {b: i for i, b in enumerate(brands)}
        facts = [extract(p.title, p.description) for p in products]
        values = [attribute_values(fs) for fs in facts]
        names = sorted({name for v in values for name in v} | set(NUMERIC_KINDS))
        attrs = {
            name: np.array([v.get(name, np.nan) for v in values], dtype=np.float64)
            for name in names
        }
        return cls(
            products=products,
            emb=np.ascontiguousarray(emb, dtype=np.float32),
            price=np.fromiter((p.price for p in products), np.float64, len(products)),
            stock=np.fromiter((p.stock for p in products), np.int64, len(products)),
            category_id=np.fromiter(
                (cat_ix[p.category] for p in products), np.int32, len(products)
            ),
            brand_id=np.fromiter((brand_ix[p.brand] for p in products), np.int32, len(products)),
            categories=categories,
            brands=[b for b in brands if b],
            brand_index=brand_ix,
            terms=category_terms(((p.title, p.category) for p in products), brands),
            by_sku={p.sku: i for i, p in enumerate(products)},
            facts=facts,
            attrs=attrs,
            names=NameIndex([p.title for p in products], [p.brand for p in products]),
            vocab=frozenset(
                singular(t)
                for p in products
                for t in tokens(f"{p.title} {p.category} {p.brand}")
                if t not in STOPWORDS
            ),
            title_words=_inverted(products),
        )

    @classmethod
    def build(
        cls, products: Sequence[ProductRecord], embedder: Embedder, cache_dir: Path
    ) -> CatalogIndex:
        """Embed the catalog, or load the embeddings of this exact catalog text from the cache
        (``cache_dir/catalog/<sha256 of model name + product texts>.npy``), so a worker
        restart or a second worker does not recompute them."""
        texts = [product_text(p) for p in products]
        digest = hashlib.sha256(MODEL_NAME.encode())
        for t in texts:
            digest.update(b"\x00" + t.encode())
        path = cache_dir / "catalog" / f"{digest.hexdigest()[:32]}.npy"
        emb: np.ndarray | None = None
        if path.exists():
            try:
                emb = np.load(path)
                if emb.shape != (len(texts), embedder.dim):
                    emb = None
            except (OSError, ValueError):
                emb = None  # a torn or foreign file: recompute and overwrite
        if emb is None:
            emb = embedder.encode(texts)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{id(emb)}.tmp.npy")
                np.save(tmp, emb)
                tmp.replace(path)  # atomic: concurrent workers never read half a file
            except OSError as exc:  # a read-only cache costs a recompute next time, no more
                log.warning("recs: cannot cache catalog embeddings in %s: %s", path, exc)
        return cls.from_embeddings(products, emb)

    def mask(self, q: CatalogQuery) -> np.ndarray:
        """Products that pass every hard filter of ``q``: (N,) bool."""
        m = self.stock > 0
        if q.min_price is not None:
            m &= self.price >= q.min_price if q.min_inclusive else self.price > q.min_price
        if q.max_price is not None:
            m &= self.price <= q.max_price if q.max_inclusive else self.price < q.max_price
        if q.categories:
            ids = [self.categories.index(c) for c in q.categories if c in self.categories]
            m &= np.isin(self.category_id, ids)
        if q.brands:
            ids = [self.brand_index[b] for b in q.brands if b in self.brand_index]
            m &= np.isin(self.brand_id, ids)
        for c in q.bounds():
            v = self.attribute(c.kind)  # NaN (unstated) fails both comparisons
            m &= v >= c.value if c.op == ">=" else v <= c.value
        return m

    def attribute(self, kind: str) -> np.ndarray:
        """(N,) values of a numeric kind, NaN where unstated; "size" is the first of the
        size kinds (persons, litres) a row states."""
        if kind == "price":
            return self.price
        if kind != "size":
            # "GB ram" that no row labels so: the unit alone ("GB")
            values = self.attrs.get(kind)
            if values is None:
                values = self.attrs.get(kind.split(" ")[0])
            return values if values is not None else np.full(len(self.products), np.nan)
        out = np.full(len(self.products), np.nan)
        for k in SIZE_KINDS:
            out = np.where(np.isnan(out), self.attrs[k], out)
        return out

    def relevance(self, qvec: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Cosine similarity of ``qvec`` with the candidates' embeddings: (len(cand),)."""
        if len(cand) < GATHER_MAX_SHARE * len(self.products):
            return self.emb[cand] @ qvec
        return (self.emb @ qvec)[cand]

    def search(self, q: CatalogQuery, qvec: np.ndarray, k: int) -> np.ndarray:
        """Text-only search: the ``k`` most relevant products passing ``q``'s filters."""
        cand = np.flatnonzero(self.mask(q))
        return cand[top_k(self.relevance(qvec, cand), k)] if len(cand) else cand


@dataclass
class Search:
    """What a product request found, and how sure the shop is that it sells such things."""

    products: list[Product]
    query: CatalogQuery  # the effective request (follow-ups merged)
    lexical: bool  # one of the request's words (or a synonym) is a catalog word
    relaxed: tuple[Constraint, ...]  # bounds no product met: the products come closest
    ranked_by: str | None  # the kind a superlative (or a relaxed bound) ordered by
    # best cosine of the request's words with a product that passed the filters: a lower
    # bound of ``relevance`` (-1.0 when none passed; 1.0 for a request with no words)
    candidate_best: float
    closeness: Callable[[], float]  # computes ``relevance``: one pass over the catalog
    unstated: str | None = None  # "like X but lighter": the kind X's row does not state
    indices: list[int] = field(default_factory=list)  # catalog rows of ``products``

    @cached_property
    def relevance(self) -> float:
        """Best cosine of the request's words with any product; 1.0 with no words."""
        return self.closeness()

    @property
    def relevant(self) -> bool:
        """Whether the catalog has something like what was asked for."""
        # The candidates' best usually decides it, sparing the pass over the whole catalog
        # (11 ms at 100,000 products).
        return relevant(self.candidate_best, self.lexical) or relevant(self.relevance, self.lexical)


def relevant(closeness: float, lexical: bool) -> bool:
    """The relevance decision (thresholds above, measured on labelled requests)."""
    return closeness >= RELEVANCE_THRESHOLD or (
        lexical and closeness >= RELEVANCE_LEXICAL_THRESHOLD
    )


def _inverted(products: Sequence[ProductRecord]) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(products):
        for word in {singular(t) for t in tokens(p.title)}:
            rows.setdefault(word, []).append(i)
    return {w: np.array(ix, dtype=np.int64) for w, ix in rows.items()}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (argpartition, then a small sort)."""
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


# --- the recommender -----------------------------------------------------------------------


class Recommender:
    """Catalog search with exact filters, ranked by text relevance and the session's history.

    One per worker process: ``__init__`` loads (or computes once) the catalog embeddings and
    the next-item model. ``recommend``/``note_click`` are pure functions of their arguments
    plus that state, so one instance serves every conversation.
    """

    def __init__(
        self,
        store: StoreBackend,
        embedder: Embedder,
        config: BrainConfig,
        index: CatalogIndex | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.currency = store.info.currency
        self.index = index or CatalogIndex.build(store.products(), embedder, config.cache_dir)
        self.bundle = self._load_or_train_bundle()
        self._lock = threading.Lock()  # worker threads share the query cache
        self._query_cache: dict[str, np.ndarray] = {}  # insertion order = LRU order

    # --- set-up ---

    def _load_or_train_bundle(self) -> RecsBundle | None:
        """The trained next-item bundle for this catalog + interaction log: from the cache,
        else a quick one (a few seconds) when the shop has interactions, else None."""
        skus = [p.sku for p in self.index.products]
        texts = product_texts(self.index.products)
        seqs = catalog_sequences(self.store.interactions(), self.index.by_sku)
        path = bundle_path(self.config, skus, seqs, texts)
        device = resolve_device(self.config.device)
        if path.exists():
            try:
                return RecsBundle.load(path, device)
            except Exception as exc:  # a stale or torn file must not stop the worker
                log.warning("recs: cannot load %s (%s); retraining", path, exc)
        if not any(seqs):
            return None
        bundle = fit_bundle(
            seqs,
            len(skus),
            shop_fit_config(seqs),
            device,
            max_seconds=QUICK_TRAIN_SECONDS,
            quick=True,
            texts=texts,
        )
        try:
            bundle.save(path)
        except OSError as exc:
            log.warning("recs: cannot cache the quick model in %s: %s", path, exc)
        return bundle

    # --- the API the dialogue uses ---

    def recommend(self, text: str, slots: dict[str, Any], limit: int = 5) -> list[Product]:
        """Products for a request, best first; [] when nothing passes the filters (see
        ``search``, which also says how relevant the catalog is to the request)."""
        return self.search(text, slots, limit).products

    def search(self, text: str, slots: dict[str, Any], limit: int = 5) -> Search:
        """Products for a request, best first, with how relevant the catalog is to it.

        Updates ``slots``: ``last_query`` (the effective request, a dict), ``last_products``
        (SKUs shown; unchanged when nothing was found, so "cheaper" still refers to them).
        """
        idx = self.index
        named, text = self._named_product(text)
        q = parse_query(text, idx.categories, idx.brands, idx.terms)
        if named is not None:  # "similar to <a product title>" (the card's button)
            q = replace(q, similar=True)
        prev = slots.get("last_query")
        if prev and q.is_follow_up:
            q = q.merged_into(CatalogQuery.from_dict(prev))
        refs = [named] if named is not None else self._reference(slots, q.similar or q.cheaper)
        q = self._apply_reference(q, refs)
        unstated = None
        wanted = comparative(text) if refs else None
        if wanted is not None:
            q, unstated = self._relative_to(q, refs, *wanted)
        qvec = self._embed(q.text) if q.text else None

        mask = idx.mask(q)
        relaxed: tuple[Constraint, ...] = ()
        if not mask.any() and q.constraints:
            relaxed = tuple(q.bounds())  # show the closest instead, and say so
            mask = idx.mask(replace(q, constraints=()))
        if q.similar:
            mask[refs] = False  # "like the last one" means another one
        cand = np.flatnonzero(mask)
        slots["last_query"] = {**q.to_dict(), "cheaper": False, "similar": False}
        rel = idx.relevance(qvec, cand) if qvec is not None else None
        result = Search(
            [],
            q,
            self._lexical(q.text),
            relaxed,
            None,
            candidate_best=1.0 if rel is None else float(rel.max(initial=-1.0)),
            closeness=lambda: self._closeness(qvec),
            unstated=unstated,
        )
        if len(cand) == 0:
            return result
        score = self._scores(q, refs, cand, self._history(slots), qvec, rel)
        words = q.text
        if q.similar and refs:  # "like the Scout tent": other tents first
            words = " ".join([words, *(self._type_words(i) for i in refs)]).strip()
        title_match = self._title_match(words)[cand]
        score = score + TITLE_WEIGHT * title_match
        best = cand[top_k(score, limit)]
        order = q.superlative or (
            (relaxed[0].kind, "desc" if relaxed[0].op == ">=" else "asc") if relaxed else None
        )
        if order is not None:
            ranked = self._ordered_by(cand, score, title_match, rel, *order)
            if len(ranked):
                best, result.ranked_by = ranked[:limit], order[0]
        slots["last_products"] = [idx.products[i].sku for i in best]
        result.products = [self._card(idx.products[i]) for i in best]
        result.indices = [int(i) for i in best]
        return result

    def relevance(self, text: str) -> tuple[float, bool]:
        """How close a request's words come to anything the shop sells (max cosine with a
        product's text; 1.0 for a request with no words of its own, such as "cheaper"), and
        whether one of them is a catalog word."""
        idx = self.index
        q = parse_query(text, idx.categories, idx.brands, idx.terms)
        return self._closeness(self._embed(q.text) if q.text else None), self._lexical(q.text)

    def is_relevant(self, text: str) -> bool:
        """Whether the catalog has something like what ``text`` asks for."""
        return relevant(*self.relevance(text))

    def _type_words(self, i: int) -> str:
        """The words of a title after brand and model ("2-person tent")."""
        names = self.index.names
        return " ".join(names.titles[i][names.brand_len[i] + 1 :])

    def _title_match(self, words: str) -> np.ndarray:
        """(N,) share of the request's words that each product's title has ("trail" in
        "trail running shoes" puts the trail shoes first among running shoes)."""
        idx = self.index
        out = np.zeros(len(idx.products))
        toks = [singular(t) for t in tokens(words)]
        for t in toks:
            rows = idx.title_words.get(t)
            if rows is not None:
                out[rows] += 1.0
        return out / len(toks) if toks else out

    def _lexical(self, words: str) -> bool:
        return any(word_forms(t) & self.index.vocab for t in tokens(words))

    def _closeness(self, qvec: np.ndarray | None) -> float:
        # one matmul over the catalog, no Python loop
        if qvec is None or not len(self.index.emb):
            return 1.0
        return float((self.index.emb @ qvec).max())

    def _ordered_by(
        self,
        cand: np.ndarray,
        score: np.ndarray,
        title_match: np.ndarray,
        rel: np.ndarray | None,
        kind: str,
        way: str,
    ) -> np.ndarray:
        """Candidates that state ``kind``, the best ``way`` first; with request words, only
        those within ``SUPERLATIVE_MARGIN`` of the best match, and whose titles have the
        request's words when some do ("the cheapest tent" is a tent)."""
        values = self.index.attribute(kind)[cand]
        keep = ~np.isnan(values)
        if (title_match[keep] > 0).any():
            keep &= title_match >= title_match[keep].max()
        if rel is not None:  # the request's cosine with each candidate
            keep &= rel >= rel.max() - SUPERLATIVE_MARGIN
        if not keep.any():
            return cand[:0]
        key = values if way == "asc" else -values
        sel = np.flatnonzero(keep)
        # by the value, then by the usual score (np.lexsort sorts by the last key first)
        return cand[sel[np.lexsort((-score[sel], key[sel]))]]

    def _relative_to(
        self, q: CatalogQuery, refs: list[int], kind: str, way: str
    ) -> tuple[CatalogQuery, str | None]:
        """ "Like X but lighter": below X's stated weight (strictly). Returns the query and
        the kind X does not state, if it does not (then nothing is added)."""
        values = self.index.attribute(kind)[refs]
        if kind == "price" or np.isnan(values).all():
            return q, None if kind == "price" else kind
        ref = float(np.nanmin(values) if way == "asc" else np.nanmax(values))
        # strictly below / above: nudge by a relative hair so that equal values fail
        bound = ref - abs(ref) * 1e-6 - 1e-9 if way == "asc" else ref + abs(ref) * 1e-6 + 1e-9
        constraint = (kind, "<=" if way == "asc" else ">=", bound)
        return replace(q, constraints=(*q.constraints, constraint)), None

    def note_click(self, slots: dict[str, Any], sku: str) -> None:
        """Remember that the customer opened a product card (payload ``view:SKU``): the
        next recommendation uses it as the newest item of the session's history and as the
        reference of "like this one" / "cheaper"."""
        if sku not in self.index.by_sku:
            return
        viewed = [s for s in slots.get("viewed", []) if s != sku]
        slots["viewed"] = [*viewed, sku][-MAX_VIEWED:]
        self._push_history(slots, sku)

    def note_mention(self, slots: dict[str, Any], sku: str) -> None:
        """Remember a product the customer talked about (e.g. asked a question on)."""
        if sku in self.index.by_sku:
            self._push_history(slots, sku)

    def also_bought(
        self, sku: str, limit: int = 5, slots: dict[str, Any] | None = None
    ) -> list[Product]:
        """ "Customers who bought this also bought": in-stock products the next-item models
        (the blend the chat ranks by, with ``sku`` as the whole history) put after ``sku``.
        A product no customer history links to (new, or a shop without interactions) gets
        the products most like it in text instead, popular ones first among equals.

        With ``slots``, the products shown become the reference of a "cheaper" follow-up.
        """
        i = self.index.by_sku.get(sku)
        if i is None:
            return []
        cand = np.flatnonzero((self.index.stock > 0) & (np.arange(len(self.index.products)) != i))
        if len(cand) == 0:
            return []
        score = self._personal([i], cand)
        if self.bundle is None or self.bundle.pop[i + 1] == 0:  # in no history: cold start
            score = self.index.relevance(self.index.emb[i], cand) + PERSONAL_WEIGHT * score
        best = cand[top_k(score, limit)]
        if slots is not None:
            slots["last_products"] = [self.index.products[j].sku for j in best]
        return [self._card(self.index.products[j]) for j in best]

    def describe_filters(self, slots: dict[str, Any]) -> str:
        """The last request in words, for grounded text: "running shoes under 100.00 EUR, in
        stock"."""
        prev = slots.get("last_query")
        if not prev:
            return "in stock"
        q = CatalogQuery.from_dict(prev)
        what = " or ".join(q.categories) or q.text or "products"
        if q.brands:
            what = f"{' or '.join(q.brands)} {what}"
        money = lambda v: f"{v:.2f} {self.currency}"  # noqa: E731
        if q.min_price is not None and q.max_price is not None:
            what += f" between {money(q.min_price)} and {money(q.max_price)}"
        elif q.max_price is not None:
            what += f" {'up to' if q.max_inclusive else 'under'} {money(q.max_price)}"
        elif q.min_price is not None:
            what += f" {'from' if q.min_inclusive else 'over'} {money(q.min_price)}"
        return f"{what}, in stock"

    # --- internals ---

    def _named_product(self, text: str) -> tuple[int | None, str]:
        """A product named by its full title after "similar to"/"like" (the dialogue's
        "Show similar products" button): (its index, the text without the title), so the
        title's words do not turn into brand and category filters."""
        low = text.lower()
        if not re.search(r"\b(?:similar|like|alternatives?)\b", low):
            return None, text
        best: tuple[int, int] | None = None  # (title length, index)
        for i, p in enumerate(self.index.products):
            title = p.title.lower()
            if title and title in low and (best is None or len(title) > best[0]):
                best = (len(title), i)
        if best is None:
            return self._loosely_named(text)
        start = low.index(self.index.products[best[1]].title.lower())
        return best[1], text[:start] + " " + text[start + best[0] :]

    def _loosely_named(self, text: str) -> tuple[int | None, str]:
        """ "Like the Fjordline Scout but cheaper": the one product a loose name points
        at, and the text without that product's title words."""
        single = [m.products[0] for m in self.index.names.mentions(text) if len(m.products) == 1]
        if not single:
            return None, text
        title = {singular(t) for t in tokens(self.index.products[single[0]].title)}
        rest = " ".join(t for t in text.split() if singular(t.lower().strip(",.?!")) not in title)
        return single[0], rest

    def _reference(self, slots: dict[str, Any], wanted: bool) -> list[int]:
        """The product "the last one" refers to: the card clicked since the last
        recommendation if any, else the top product of the last recommendation."""
        if not wanted:
            return []
        shown = [s for s in slots.get("last_products", []) if s in self.index.by_sku]
        viewed = slots.get("viewed", [])
        if viewed and viewed[-1] in self.index.by_sku and (not shown or viewed[-1] in shown):
            return [self.index.by_sku[viewed[-1]]]
        return [self.index.by_sku[shown[0]]] if shown else []

    def _apply_reference(self, q: CatalogQuery, refs: list[int]) -> CatalogQuery:
        """ "Cheaper": below the cheapest reference product (strictly). "Similar" with no
        category of its own: the reference products' categories."""
        if not refs:
            return q
        if q.cheaper:
            ceiling = float(self.index.price[refs].min())
            if q.max_price is None or ceiling <= q.max_price:
                q = replace(q, max_price=ceiling, max_inclusive=False)
        if q.similar and not q.categories:
            cats = tuple(dict.fromkeys(self.index.products[i].category for i in refs))
            q = replace(q, categories=cats, category=cats[0])
        return q

    def _scores(
        self,
        q: CatalogQuery,
        refs: list[int],
        cand: np.ndarray,
        history: list[int],
        qvec: np.ndarray | None,
        rel: np.ndarray | None,
    ) -> np.ndarray:
        """Final ranking score of each candidate (see the module docstring); ``rel`` is the
        cosine of the request's words (``qvec``) with each candidate."""
        if refs and (q.similar or qvec is None):
            ref_vec = _unit(self.index.emb[refs].mean(axis=0))
            qvec = ref_vec if qvec is None else _unit(qvec + ref_vec)
            rel = self.index.relevance(qvec, cand)
        personal = self._personal(history, cand)
        if rel is None:
            return personal
        return rel + PERSONAL_WEIGHT * personal

    def _embed(self, text: str) -> np.ndarray:
        """The query's embedding, from a small LRU: follow-ups ("cheaper", "under 50 then")
        re-rank the previous words, and MiniLM is most of a request's CPU time."""
        with self._lock:
            vec = self._query_cache.pop(text, None)
        if vec is None:
            vec = self.embedder.encode([text])[0]
        with self._lock:
            self._query_cache[text] = vec
            while len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.pop(next(iter(self._query_cache)))
        return vec

    def _personal(self, history: list[int], cand: np.ndarray) -> np.ndarray:
        """0..1 score of each candidate from the session's history (catalog indices)."""
        b = self.bundle
        if b is None:
            return np.zeros(len(cand), dtype=np.float32)
        items = cand + 1  # model item ids are catalog indices + 1
        if not history:  # popularity: the models have nothing to go on
            return blend({}, b.weights, b.pop[items], np.array([True]))[0]
        return b.scores([[i + 1 for i in history]], items)[0]

    def _history(self, slots: dict[str, Any]) -> list[int]:
        """The session's items, oldest first: past orders (when the customer's email is
        verified), then what was mentioned or clicked in this conversation."""
        items: list[int] = []
        email = slots.get("verified_email")
        if isinstance(email, str) and email:
            orders = sorted(self.store.orders_for_email(email), key=lambda o: o.placed_at)
            items += [
                self.index.by_sku[s] for o in orders for s, _ in o.items if s in self.index.by_sku
            ]
        items += [
            self.index.by_sku[s] for s in slots.get("rec_history", []) if s in self.index.by_sku
        ]
        return items[-MAX_HISTORY:]

    @staticmethod
    def _push_history(slots: dict[str, Any], sku: str) -> None:
        hist = list(slots.get("rec_history", []))
        if not hist or hist[-1] != sku:
            hist.append(sku)
        slots["rec_history"] = hist[-MAX_HISTORY:]

    def _card(self, p: ProductRecord) -> Product:
        return Product(
            sku=p.sku,
            title=p.title,
            price=p.price,
            currency=self.currency,
            url=p.url or None,
            image_url=p.image_url or None,
        )
