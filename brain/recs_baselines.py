"""Item-to-item models that careful studies keep finding hard to beat on sparse e-commerce
data (Ferrari Dacrema et al. 2019): EASE (Steck 2019), RP3beta (Paudel et al. 2017) and
ItemKNN (asymmetric cosine with shrinkage); and one read off the products' own words
(``TextSimilarity``), which knows items nobody has bought yet.

Items are integers ``1..n_items`` (``0`` is padding), as in ``recs_model``. The first three
are an item-to-item weight matrix ``W``; a history scores the catalog as ``x @ W``, where ``x``
holds the history's items, the most recent weighing most (we predict the *next* item, and
a shop session's last items say most about it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
import torch

History = Sequence[int]


def interaction_matrix(histories: Sequence[History], n_items: int) -> sp.csr_matrix:
    """Users x items (``n_items + 1`` columns, column 0 unused), 1 where the user has the
    item (a repeat counts once)."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    cols = np.fromiter((i for h in histories for i in h), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(len(histories)), lengths)
    x = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(len(histories), n_items + 1)
    )
    x.data[:] = 1.0  # duplicates were summed
    return x


def history_vectors(
    histories: Sequence[History], n_items: int, decay: float, recent: int = 50
) -> sp.csr_matrix:
    """One row per history: the last ``recent`` items, the newest weighing 1, the one
    before ``decay``, then ``decay**2``... (an item seen twice keeps its newest weight)."""
    rows, cols, vals = [], [], []
    for b, h in enumerate(histories):
        seen: set[int] = set()
        for k, item in enumerate(reversed(h[-recent:])):
            if item in seen:
                continue
            seen.add(item)
            rows.append(b)
            cols.append(item)
            vals.append(decay**k)
    return sp.csr_matrix(
        (np.asarray(vals, np.float32), (rows, cols)), shape=(len(histories), n_items + 1)
    )


@dataclass
class ItemToItem:
    """A sparse item-to-item weight matrix and how histories are turned into scores."""

    w: sp.csr_matrix  # (n_items + 1, n_items + 1) float32
    decay: float  # history weights, see ``history_vectors``
    n_items: int

    def scores(self, histories: Sequence[History]) -> np.ndarray:
        """``(B, n_items + 1)`` float32 next-item scores; column 0 is ``-inf``."""
        x = history_vectors(histories, self.n_items, self.decay)
        out = np.asarray((x @ self.w).todense(), dtype=np.float32)
        out[:, 0] = -np.inf
        return out

    def neighbours(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(items, weights) of ``item``'s row: what it points to."""
        lo, hi = self.w.indptr[item], self.w.indptr[item + 1]
        return self.w.indices[lo:hi], self.w.data[lo:hi]

    def state(self) -> dict[str, Any]:
        """Arrays for ``torch.save``."""
        return {
            "indptr": torch.from_numpy(self.w.indptr.astype(np.int64)),
            "indices": torch.from_numpy(self.w.indices.astype(np.int32)),
            "data": torch.from_numpy(self.w.data.astype(np.float32)),
            "decay": self.decay,
            "n_items": self.n_items,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> ItemToItem:
        """Inverse of ``state``."""
        n = int(s["n_items"]) + 1
        w = sp.csr_matrix((s["data"].numpy(), s["indices"].numpy(), s["indptr"].numpy()), (n, n))
        return cls(w, float(s["decay"]), int(s["n_items"]))


def _top_k_rows(dense: np.ndarray, top_k: int, chunk: int = 1024) -> sp.coo_matrix:
    """The ``top_k`` largest positive entries of each row of ``dense`` (chunks of rows, so
    the argpartition's index array stays small)."""
    n, m = dense.shape
    k = min(top_k, m)
    rows, cols, vals = [], [], []
    for lo in range(0, n, chunk):
        block = dense[lo : lo + chunk]
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        v = np.take_along_axis(block, part, axis=1)
        keep = v > 0
        rows.append(np.repeat(np.arange(lo, lo + len(block)), k)[keep.ravel()])
        cols.append(part[keep])
        vals.append(v[keep])
    return sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, m)
    )


def ease(
    histories: Sequence[History],
    n_items: int,
    l2: float = 200.0,
    min_count: int = 5,
    max_items: int = 20_000,
    top_k: int = 200,
    decay: float = 0.8,
) -> ItemToItem:
    """EASE: the closed-form item-to-item linear model ``B = I - P / diag(P)``, ``P = (X'X +
    l2 I)^-1``, with a zero diagonal (an item does not explain itself).

    The Gram matrix is dense (n x n), so only items seen at least ``min_count`` times, and at
    most the ``max_items`` most frequent, take part: 16,859 items are a 1.1 GB float32 Gram;
    rare items add memory and time and little signal. The inverse is a float32 Cholesky one,
    in place (one n x n array in memory). Each row keeps its ``top_k`` positive weights.
    """
    x = interaction_matrix(histories, n_items)
    counts = np.asarray(x.sum(axis=0)).ravel()
    counts[0] = 0
    keep = np.flatnonzero(counts >= max(min_count, 1))
    if len(keep) > max_items:
        keep = np.sort(keep[np.argsort(-counts[keep], kind="stable")[:max_items]])
    n = n_items + 1
    if len(keep) == 0:
        return ItemToItem(sp.csr_matrix((n, n), dtype=np.float32), decay, n_items)
    xk = x[:, keep]
    gram = np.asfortranarray((xk.T @ xk).toarray(), dtype=np.float32)
    gram[np.diag_indices_from(gram)] += l2
    chol, info = scipy.linalg.lapack.spotrf(gram, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise ValueError(f"EASE: the Gram matrix is not positive definite (l2={l2} too small?)")
    p, info = scipy.linalg.lapack.spotri(chol, lower=1, overwrite_c=1)
    if info != 0:
        raise ValueError(f"EASE: cannot invert the Gram matrix (lapack info {info})")
    # spotri fills the lower triangle only: mirror it, then B = P / -diag(P), diagonal 0.
    upper = np.triu_indices(len(keep), 1)
    p[upper] = p.T[upper]
    del upper
    p /= -np.diag(p).copy()[None, :]
    np.fill_diagonal(p, 0.0)
    sub = _top_k_rows(p, top_k)
    del p
    w = sp.csr_matrix((sub.data, (keep[sub.row], keep[sub.col])), shape=(n, n), dtype=np.float32)
    return ItemToItem(w, decay, n_items)


def rp3beta(
    histories: Sequence[History],
    n_items: int,
    alpha: float = 1.0,
    beta: float = 0.5,
    top_k: int = 200,
    decay: float = 0.8,
) -> ItemToItem:
    """RP3beta: three-step random walk item -> user -> item, ``W = (P_iu P_ui)^alpha``
    entrywise (alpha applied to the transition probabilities), each target column divided by
    its popularity ``** beta`` so popular items do not swamp every row."""
    x = interaction_matrix(histories, n_items)
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    item_deg = np.asarray(x.sum(axis=0)).ravel()
    p_ui = sp.diags(1.0 / np.maximum(user_deg, 1)) @ x
    p_iu = sp.diags(1.0 / np.maximum(item_deg, 1)) @ x.T.tocsr()
    if alpha != 1.0:
        p_ui = p_ui.power(alpha)
        p_iu = p_iu.power(alpha)
    w = (p_iu @ p_ui).tocsr()
    w.setdiag(0.0)
    w.eliminate_zeros()
    w = w @ sp.diags(np.power(np.maximum(item_deg, 1), -beta))
    w = _sparse_top_k(w.tocsr().astype(np.float32), top_k)
    return ItemToItem(w, decay, n_items)


def itemknn(
    histories: Sequence[History],
    n_items: int,
    shrink: float = 100.0,
    alpha: float = 0.5,
    top_k: int = 200,
    decay: float = 0.7,
) -> ItemToItem:
    """ItemKNN: ``w_ij = c_ij / (n_i^alpha * n_j^(1 - alpha) + shrink)``, where ``c_ij`` counts
    the customers who bought both and ``n_i`` those who bought ``i`` (``alpha = 0.5`` is the
    cosine). ``shrink`` damps pairs seen by few customers, whose cosine is mostly noise."""
    x = interaction_matrix(histories, n_items)
    counts = np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1.0)
    gram = (x.T @ x).tocsr()
    gram.setdiag(0.0)
    gram.eliminate_zeros()
    g = gram.tocoo()
    den = np.power(counts[g.row], alpha) * np.power(counts[g.col], 1.0 - alpha) + shrink
    w = sp.csr_matrix((g.data / den, (g.row, g.col)), shape=g.shape, dtype=np.float32)
    return ItemToItem(_sparse_top_k(w, top_k), decay, n_items)


@dataclass
class TextSimilarity:
    """Items whose titles share words: the cosine of TF-IDF vectors of words and word pairs
    (``fit``). A history scores the catalog as the sum of its items' cosines with every item,
    the most recent weighing most, read off the sparse vectors at query time: no item x item
    matrix is built, so a catalog of 100,000 products costs nothing to fit."""

    x: sp.csr_matrix  # (n_items + 1, vocabulary) float32, unit rows (row 0 empty)
    decay: float  # history weights, see ``history_vectors``
    n_items: int
    # x transposed, kept in CSR: scipy would convert it on every request otherwise (10 ms at
    # 100,000 products)
    xt: sp.csr_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.xt = self.x.T.tocsr()

    @classmethod
    def fit(cls, texts: Sequence[str], decay: float = 0.3, min_df: int = 2) -> TextSimilarity:
        """``texts[i]`` is item ``i``'s title, brand and category (``texts[0]``, padding, is
        ignored).
        Words of a single product (``min_df``) link nothing and are dropped; a series name,
        a platform or a brand links items whatever the purchase log says."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True)
        try:
            x = vectorizer.fit_transform(["", *texts[1:]]).astype(np.float32).tocsr()
        except ValueError:  # no word shared by min_df products (a tiny catalog)
            x = sp.csr_matrix((len(texts), 1), dtype=np.float32)
        return cls(x, decay, len(texts) - 1)

    def scores(self, histories: Sequence[History]) -> np.ndarray:
        """``(B, n_items + 1)`` float32 next-item scores; the history's own items score 0,
        column 0 is ``-inf``."""
        h = history_vectors(histories, self.n_items, self.decay)
        out = ((h @ self.x) @ self.xt).toarray().astype(np.float32, copy=False)
        out[h.nonzero()] = 0.0  # an item is its own best match
        out[:, 0] = -np.inf
        return out

    def state(self) -> dict[str, Any]:
        """Arrays for ``torch.save``."""
        return {
            "indptr": torch.from_numpy(self.x.indptr.astype(np.int64)),
            "indices": torch.from_numpy(self.x.indices.astype(np.int32)),
            "data": torch.from_numpy(self.x.data.astype(np.float32)),
            "width": self.x.shape[1],
            "decay": self.decay,
            "n_items": self.n_items,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> TextSimilarity:
        """Inverse of ``state``."""
        shape = (int(s["n_items"]) + 1, int(s["width"]))
        x = sp.csr_matrix((s["data"].numpy(), s["indices"].numpy(), s["indptr"].numpy()), shape)
        return cls(x, float(s["decay"]), int(s["n_items"]))


def _sparse_top_k(w: sp.csr_matrix, top_k: int) -> sp.csr_matrix:
    """Each row's ``top_k`` largest entries (sort by row, then weight descending)."""
    coo = w.tocoo()
    order = np.lexsort((-coo.data, coo.row))
    r, c, v = coo.row[order], coo.col[order], coo.data[order]
    starts = np.searchsorted(r, np.arange(w.shape[0] + 1))
    rank = np.arange(len(r)) - starts[r]
    keep = rank < top_k
    return sp.csr_matrix((v[keep], (r[keep], c[keep])), shape=w.shape, dtype=np.float32)
