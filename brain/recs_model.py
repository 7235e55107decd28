"""Next-item models for "customers who bought this also bought": a small SASRec transformer
(learned), item-to-item co-occurrence and popularity (baselines and cold-start fallbacks);
EASE and RP3beta are in ``recs_baselines``, the blend in ``recs_blend``.

Items are integers ``1..n_items``; ``0`` is padding. A history is the user's items in the
order they were seen, oldest first. Every scorer answers the same question: given histories
``(B,)``, how likely is each item to come next, as a ``(B, n_items + 1)`` float array
(column 0 is padding and always ``-inf``).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

History = Sequence[int]


# --- baselines -------------------------------------------------------------------------------


def popularity(histories: Sequence[History], n_items: int) -> np.ndarray:
    """How often each item occurs in the histories: ``(n_items + 1,)`` float32 counts."""
    flat = np.fromiter((i for h in histories for i in h), dtype=np.int64)
    return np.bincount(flat, minlength=n_items + 1).astype(np.float32)[: n_items + 1]


@dataclass
class CoOccurrence:
    """Item-to-item scores from items seen close together in one history, as a CSR matrix
    (row ``a``: items that followed or preceded ``a``). Nearer neighbours weigh more, and an
    item that came *after* ``a`` more than one that came before (we predict the next one).
    Rows keep their ``top_k`` strongest neighbours so memory stays linear in the catalog."""

    indptr: np.ndarray  # (n_items + 2,) int64
    indices: np.ndarray  # (nnz,) int32
    weights: np.ndarray  # (nnz,) float32, each row sums to 1
    n_items: int

    @classmethod
    def build(
        cls,
        histories: Sequence[History],
        n_items: int,
        window: int = 3,
        backward: float = 0.3,
        top_k: int = 200,
    ) -> CoOccurrence:
        """Count neighbouring pairs over all histories (vectorised over pair distances)."""
        lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
        flat = np.fromiter((i for h in histories for i in h), dtype=np.int64)
        owner = np.repeat(np.arange(len(histories)), lengths)
        rows, cols, vals = [], [], []
        for d in range(1, window + 1):
            same = owner[:-d] == owner[d:]
            a, b = flat[:-d][same], flat[d:][same]
            keep = a != b
            a, b = a[keep], b[keep]
            rows += [a, b]
            cols += [b, a]
            vals += [np.full(len(a), 1.0 / d), np.full(len(a), backward / d)]
        if not rows:
            return cls(
                np.zeros(n_items + 2, np.int64),
                np.zeros(0, np.int32),
                np.zeros(0, np.float32),
                n_items,
            )
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        key = r * (n_items + 1) + c
        uniq, inv = np.unique(key, return_inverse=True)
        w = np.bincount(inv, weights=v)
        r, c = uniq // (n_items + 1), uniq % (n_items + 1)
        # Keep the strongest top_k per row: sort by (row, -weight), then rank inside the row.
        order = np.lexsort((-w, r))
        r, c, w = r[order], c[order], w[order]
        starts = np.searchsorted(r, np.arange(n_items + 2))
        rank = np.arange(len(r)) - starts[r]
        keep = rank < top_k
        r, c, w = r[keep], c[keep], w[keep]
        indptr = np.searchsorted(r, np.arange(n_items + 2)).astype(np.int64)
        row_sum = np.bincount(r, weights=w, minlength=n_items + 1)
        w = w / row_sum[r]
        return cls(indptr, c.astype(np.int32), w.astype(np.float32), n_items)

    def scores(
        self, histories: Sequence[History], recent: int = 5, decay: float = 0.6
    ) -> np.ndarray:
        """Sum of the neighbour rows of the last ``recent`` items, the latest weighing most:
        ``(B, n_items + 1)`` float32, zero where nothing co-occurred."""
        out = np.zeros((len(histories), self.n_items + 1), dtype=np.float32)
        for b, hist in enumerate(histories):
            for k, item in enumerate(reversed(hist[-recent:])):
                lo, hi = self.indptr[item], self.indptr[item + 1]
                out[b, self.indices[lo:hi]] += (decay**k) * self.weights[lo:hi]
        return out

    def state(self) -> dict[str, Any]:
        """Arrays for ``torch.save``."""
        return {
            "indptr": torch.from_numpy(self.indptr),
            "indices": torch.from_numpy(self.indices),
            "weights": torch.from_numpy(self.weights),
            "n_items": self.n_items,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> CoOccurrence:
        """Inverse of ``state``."""
        return cls(
            s["indptr"].numpy(), s["indices"].numpy(), s["weights"].numpy(), int(s["n_items"])
        )


# --- SASRec ----------------------------------------------------------------------------------


@dataclass
class SASRecConfig:
    """A small self-attentive sequential recommender (Kang & McAuley 2018), trained with a
    softmax over items (cross-entropy beats SASRec's original one-negative BCE)."""

    n_items: int = 0  # items 1..n_items; 0 is padding
    dim: int = 64  # item / position embedding size
    heads: int = 2
    layers: int = 2
    max_len: int = 20  # only the last max_len items of a history are read (shop sessions
    # are short: the Games histories average 7.7 items)
    # 0.5 against 0.2, on the Games inner split: best ndcg@10 0.057 vs 0.052 (at the 11th
    # epoch vs the 4th: 0.2 overfits within the budget)
    dropout: float = 0.5
    # Training
    epochs: int = 8
    batch_size: int = 512
    lr: float = 5e-3
    weight_decay: float = 0.0
    # Above this many items the loss uses sampled negatives instead of the full softmax: on
    # a CPU the (positions x items) logits of a full softmax over 17k items cost 5-8x more
    # per epoch than a few thousand shared negatives, for little gain within the budget.
    # 4,096 against 2,048 (Games inner split, the blend's half): ndcg@10 0.053 vs 0.048;
    # 8,192 is slower per epoch and had not caught up at the 300 s budget.
    full_softmax_max_items: int = 4096
    negatives: int = 4096
    patience: int = 3  # epochs without a better validation score before stopping
    seed: int = 0


class _Block(nn.Module):
    """Pre-norm transformer block with causal self-attention."""

    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.ln2 = nn.LayerNorm(cfg.dim)
        self.ff = nn.Sequential(
            nn.Linear(cfg.dim, 2 * cfg.dim), nn.GELU(), nn.Linear(2 * cfg.dim, cfg.dim)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.p_drop = cfg.dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # x: (B, L, D); allowed: (B, 1, L, L) bool, True where a query may attend a key
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=0.0)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class SASRec(nn.Module):
    """Histories in, next-item logits out; item embeddings are shared with the output."""

    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = nn.Embedding(cfg.n_items + 1, cfg.dim, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_len, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.dim)
        self.trained: dict[str, Any] = {}  # epochs and time of the last train_sasrec
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """seq: (B, L) left-padded item ids, L <= max_len -> (B, L, D) states."""
        n = seq.shape[1]
        pos = torch.arange(self.cfg.max_len - n, self.cfg.max_len, device=seq.device)
        x = self.items(seq) * math.sqrt(self.cfg.dim) + self.pos(pos)
        x = self.drop(x * (seq != 0).unsqueeze(-1))
        causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
        # A query never attends padding, but always itself: no all-masked row, hence no NaN.
        allowed = (causal & (seq != 0)[:, None, :]) | torch.eye(
            n, dtype=torch.bool, device=seq.device
        )
        allowed = allowed.unsqueeze(1)
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln(x)

    def last_logits(self, seq: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) histories -> (B, n_items + 1) logits of the next item (padding at -inf),
        or (B, len(items)) for the item ids ``items`` only."""
        h = self.hidden(seq)[:, -1]
        if items is not None:
            return h @ self.items.weight[items].T
        logits = h @ self.items.weight.T
        logits[:, 0] = float("-inf")
        return logits


def pad_left(histories: Sequence[History], length: int) -> np.ndarray:
    """(B, length) int64, each history's last ``length`` items right-aligned, 0 before."""
    out = np.zeros((len(histories), length), dtype=np.int64)
    for b, h in enumerate(histories):
        tail = h[-length:]
        if len(tail):
            out[b, length - len(tail) :] = tail
    return out


def train_sasrec(
    histories: Sequence[History],
    cfg: SASRecConfig,
    device: str = "cpu",
    progress: bool = False,
    max_seconds: float | None = None,
    validate: Callable[[SASRec], float] | None = None,
) -> SASRec:
    """Fit SASRec to predict every next item of every history (teacher forcing).

    Histories are sorted by length into batches so a batch of short histories runs short
    (most shop histories are a handful of items); batch order is shuffled each epoch.
    ``max_seconds`` stops early (after the current batch), for a quick model at start-up.
    ``validate`` scores the model after each epoch (higher is better, e.g. ndcg@10 on
    held-out next items): training stops after ``cfg.patience`` epochs without a better
    score and the best epoch's weights are kept. ``model.trained`` records what happened.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    usable = [h for h in histories if len(h) >= 2]
    model = SASRec(cfg).to(device)
    if not usable:
        return model.eval()
    rows = pad_left(usable, cfg.max_len + 1)
    lengths = np.minimum([len(h) for h in usable], cfg.max_len + 1)
    order = np.argsort(lengths, kind="stable")
    batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    full = cfg.n_items <= cfg.full_softmax_max_items
    start = time.monotonic()
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    epochs_run = 0
    for epoch in range(cfg.epochs):
        model.train()
        total, count = 0.0, 0
        for bi in rng.permutation(len(batches)):
            idx = batches[bi]
            width = int(lengths[idx].max())
            chunk = torch.from_numpy(rows[idx, -width:]).to(device)
            inp, tgt = chunk[:, :-1], chunk[:, 1:]
            valid = inp != 0
            h = model.hidden(inp)[valid]  # (N, D)
            y = tgt[valid]  # (N,)
            loss = _softmax_loss(model, h, y, full, cfg.negatives)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                break
        epochs_run = epoch + 1
        note = ""
        if validate is not None:
            score = validate(model.eval())
            note = f" valid {score:.4f}"
            if best is None or score > best[0]:
                best = (score, epochs_run, copy.deepcopy(model.state_dict()))
        if progress:
            print(
                f"recs: epoch {epochs_run}/{cfg.epochs} loss {total / max(count, 1):.4f}{note} "
                f"({time.monotonic() - start:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
        if best is not None and epochs_run - best[1] >= cfg.patience:
            break
    if best is not None:
        model.load_state_dict(best[2])
    model.trained = {
        "epochs_run": epochs_run,
        "best_epoch": best[1] if best else epochs_run,
        "best_valid": round(best[0], 4) if best else None,
        "train_s": round(time.monotonic() - start, 1),
    }
    return model.eval()


def _softmax_loss(
    model: SASRec, h: torch.Tensor, y: torch.Tensor, full: bool, negatives: int
) -> torch.Tensor:
    """Cross-entropy of the true next item against all items, or (large catalogs) against
    the batch's targets plus ``negatives`` uniformly sampled items."""
    weight = model.items.weight
    if full:
        logits = h @ weight.T
        logits[:, 0] = float("-inf")
        return F.cross_entropy(logits, y)
    n = weight.shape[0] - 1
    sampled = torch.randint(1, n + 1, (negatives,), device=h.device)
    cand, y_idx = torch.unique(torch.cat([y, sampled]), return_inverse=True)
    logits = h @ weight[cand].T
    return F.cross_entropy(logits, y_idx[: len(y)])


# Scoring some of a catalog's rows: past this share of them, gathering the rows copies more
# than one product with the whole matrix costs (item logits here, product cosines in
# ``recommender.CatalogIndex.relevance``).
GATHER_MAX_SHARE = 0.3


@torch.inference_mode()
def sasrec_scores(
    model: SASRec,
    histories: Sequence[History],
    items: np.ndarray | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Next-item logits for each history: (B, n_items + 1) float32, or (B, len(items)) for
    the item ids ``items`` only (a shop's filtered candidates); empty histories get 0."""
    device = next(model.parameters()).device
    gather = items is not None and len(items) < GATHER_MAX_SHARE * model.cfg.n_items
    wanted = torch.from_numpy(np.asarray(items, dtype=np.int64)).to(device) if gather else None
    width_out = model.cfg.n_items + 1 if wanted is None else len(wanted)
    out = np.zeros((len(histories), width_out), dtype=np.float32)
    for i in range(0, len(histories), batch_size):
        part = histories[i : i + batch_size]
        # padding only to the batch's longest history: pads are masked, and the real items
        # keep their positions (right-aligned), so the logits are those of full padding
        width = min(model.cfg.max_len, max((len(h) for h in part), default=0) or 1)
        seq = torch.from_numpy(pad_left(part, width)).to(device)
        out[i : i + len(part)] = model.last_logits(seq, wanted).float().cpu().numpy()
    empty = np.fromiter((len(h) == 0 for h in histories), dtype=bool, count=len(histories))
    out[empty] = 0.0
    if items is None:
        out[:, 0] = -np.inf
    elif wanted is None:
        out = out[:, items]
    return out
