"""Understanding: intents (a softmax classifier on all-MiniLM-L6-v2 embeddings) and entities
(order ids, emails).

The intent model trains at first use from ``brain/data/intents.csv`` (about a second of
embedding and a few hundred full-batch steps) and is cached under ``config.cache_dir``,
keyed by a hash of the training data, so later loads only read a small tensor file.
"""

from __future__ import annotations

import csv
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brain.config import BrainConfig
from brain.embeddings import Embedder, get_embedder

TRAIN_DATA = Path(__file__).resolve().parent / "data" / "intents.csv"
# Bump when the classifier or its training changes, so old caches are not reused.
MODEL_VERSION = "linear-v1"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_TEXT_COLS = ("text", "utterance", "instruction", "sentence", "query", "question")
_LABEL_COLS = ("label", "intent", "category", "class")


class NluDataError(Exception):
    """A labelled CSV file cannot be used (missing columns, no rows)."""


@dataclass(frozen=True)
class Intent:
    """The classifier's answer for one message."""

    name: str
    confidence: float
    ranked: tuple[tuple[str, float], ...]  # the top 3, best first


class IntentClassifier:
    """A linear softmax layer over normalised sentence embeddings.

    Linear is enough here: MiniLM embeddings separate these intents well, and a linear
    layer trains in well under a second on CPU with no hyper-parameter search.
    """

    def __init__(self, labels: list[str], weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.labels = labels
        self.weight = weight  # (n_labels, 384)
        self.bias = bias  # (n_labels,)

    @classmethod
    def train(
        cls, x: np.ndarray, y: Sequence[str], steps: int = 300, seed: int = 0
    ) -> IntentClassifier:
        """Fit on embeddings ``x`` (n, 384) and labels ``y`` (n)."""
        labels = sorted(set(y))
        index = {name: i for i, name in enumerate(labels)}
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        yt = torch.tensor([index[v] for v in y], dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        layer = torch.nn.Linear(xt.shape[1], len(labels))
        with torch.no_grad():
            layer.weight.normal_(0.0, 0.01, generator=gen)
            layer.bias.zero_()
        opt = torch.optim.Adam(layer.parameters(), lr=0.05, weight_decay=1e-5)
        # Balanced classes: out_of_scope has more examples than the others.
        counts = torch.bincount(yt, minlength=len(labels)).float()
        class_w = counts.sum() / (len(labels) * counts.clamp(min=1))
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(layer(xt), yt, weight=class_w)
                loss.backward()
                opt.step()
        return cls(labels, layer.weight.detach().clone(), layer.bias.detach().clone())

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_labels) for embeddings (n, 384)."""
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.inference_mode():
            logits = xt @ self.weight.T + self.bias
            return torch.softmax(logits, dim=-1).numpy()

    def predict(self, x: np.ndarray) -> list[str]:
        """The best label per row of ``x``."""
        return [self.labels[i] for i in self.probabilities(x).argmax(axis=1)]

    def save(self, path: Path) -> None:
        """Write the weights atomically (another worker may read the cache at the same time)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{threading.get_ident()}")
        torch.save({"labels": self.labels, "weight": self.weight, "bias": self.bias}, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> IntentClassifier:
        """Read weights written by ``save``."""
        data = torch.load(path, weights_only=True)
        return cls(list(data["labels"]), data["weight"], data["bias"])


class Nlu:
    """Intents and entities of customer messages for one shop."""

    def __init__(
        self, embedder: Embedder, classifier: IntentClassifier, order_id_pattern: str
    ) -> None:
        self.embedder = embedder
        self.classifier = classifier
        self.order_re = re.compile(order_id_pattern, re.IGNORECASE)
        # For a "PREFIX-\d{n}" pattern, customers often type the digits alone ("10231").
        simple = re.fullmatch(r"([A-Za-z]+-?)\\d\{(\d+)\}", order_id_pattern)
        self._prefix = simple.group(1).upper() if simple else ""
        self._bare_re = (
            re.compile(rf"(?<![\w-])\d{{{simple.group(2)}}}(?![\w-])") if simple else None
        )

    def intent(self, text: str) -> Intent:
        """Classify one message."""
        probs = self.classifier.probabilities(self.embedder.encode([text]))[0]
        order = np.argsort(-probs)[:3]
        ranked = tuple((self.classifier.labels[i], float(probs[i])) for i in order)
        return Intent(ranked[0][0], ranked[0][1], ranked)

    def order_ids(self, text: str) -> list[str]:
        """Order ids in ``text`` matching the shop's pattern, upper-cased as stored."""
        found = [m.group(0).upper() for m in self.order_re.finditer(text)]
        if not found and self._bare_re is not None:
            found = [self._prefix + m.group(0) for m in self._bare_re.finditer(text)]
        return found

    @staticmethod
    def emails(text: str) -> list[str]:
        """Email addresses in ``text``, lower-cased."""
        return [m.group(0).lower().rstrip(".") for m in _EMAIL.finditer(text)]


def data_hash(path: Path) -> str:
    """The cache key of a training file: its bytes and the model version."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(MODEL_VERSION.encode())
    return digest.hexdigest()[:16]


def load_intent_model(config: BrainConfig, embedder: Embedder | None = None) -> IntentClassifier:
    """The shipped intent model: read from the cache, or trained and cached on first use."""
    cached = Path(config.cache_dir) / "intents" / f"intent-{data_hash(TRAIN_DATA)}.pt"
    if cached.is_file():
        return IntentClassifier.load(cached)
    x, labels = training_set(config, embedder)
    model = IntentClassifier.train(x, labels)
    model.save(cached)
    return model


def training_set(
    config: BrainConfig, embedder: Embedder | None = None
) -> tuple[np.ndarray, list[str]]:
    """Embeddings (n, 384) and labels of the shipped training data, cached beside the model
    (re-training with other settings or a held-out split then needs no embedding pass)."""
    texts, labels = read_labelled(TRAIN_DATA, "text", "intent")
    cached = Path(config.cache_dir) / "intents" / f"train-{data_hash(TRAIN_DATA)}.npy"
    if cached.is_file():
        x = np.load(cached)
        if x.shape[0] == len(texts):
            return x, labels
    x = (embedder or get_embedder(config.device)).encode(texts)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.stem}.tmp{threading.get_ident()}.npy")
    np.save(tmp, x)
    tmp.replace(cached)
    return x, labels


def read_labelled(
    path: Path, text_col: str | None = None, label_col: str | None = None
) -> tuple[list[str], list[str]]:
    """(texts, labels) of a CSV file; columns found by name when not given."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        tcol = text_col or _pick(header, _TEXT_COLS, path, "text")
        lcol = label_col or _pick(header, _LABEL_COLS, path, "label")
        for col in (tcol, lcol):
            if col not in header:
                raise NluDataError(f"{path}: no column {col!r} (columns: {', '.join(header)})")
        rows = [(r[tcol].strip(), r[lcol].strip()) for r in reader if r[tcol] and r[lcol]]
    if not rows:
        raise NluDataError(f"{path}: no labelled rows")
    return [t for t, _ in rows], [lab for _, lab in rows]


def _pick(header: Sequence[str], candidates: Sequence[str], path: Path, what: str) -> str:
    lowered = {h.lower(): h for h in header}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise NluDataError(
        f"{path}: cannot tell the {what} column among {', '.join(header)}; "
        f"name it with --{what}-col"
    )


def scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float | int]:
    """Accuracy and macro F1 of predictions.

    Macro F1 averages over the labels of ``gold``: a prediction outside that set (say
    ``out_of_scope`` on a data set without it) counts as a miss of its gold label.
    """
    n = len(gold)
    labels = sorted(set(gold))
    f1s = []
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p == lab)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != lab and p == lab)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p != lab)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    correct = sum(1 for g, p in zip(gold, pred, strict=True) if g == p)
    return {
        "accuracy": round(correct / n, 4) if n else 0.0,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "n": n,
    }


def eval_nlu(
    data: Path,
    train: Path | None,
    text_col: str | None,
    label_col: str | None,
    config: BrainConfig,
) -> dict[str, float | int]:
    """Score the intent model on a labelled CSV: ``{"accuracy", "macro_f1", "n"}``.

    With ``train``, a fresh classifier is trained on that file first (any label set);
    without it, the shipped intent model is scored (its labels are the shop's intents).
    """
    embedder = get_embedder(config.device)
    texts, gold = read_labelled(Path(data), text_col, label_col)
    if train is not None:
        tr_texts, tr_labels = read_labelled(Path(train), text_col, label_col)
        model = IntentClassifier.train(embedder.encode(tr_texts), tr_labels)
    else:
        model = load_intent_model(config, embedder)
    return scores(gold, model.predict(embedder.encode(texts)))
