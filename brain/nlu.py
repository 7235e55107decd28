"""Understanding: intents (all-MiniLM-L6-v2 fine-tuned on the shop's intents, see
``brain.intent_model``), the out-of-scope decision, and entities (order ids, emails).

The shipped intent model is fine-tuned from ``brain/data/intents.csv`` by ``omnigate
prepare`` (about three minutes on a 2-core CPU) and cached under
``config.cache_dir``, keyed by a hash of the training data and of the training code, so later
loads only read the tuned layers.
"""

from __future__ import annotations

import csv
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from brain import augment, char_model, intent_model
from brain.config import BrainConfig, IntentTraining
from brain.embeddings import Embedder
from brain.intent_model import IntentModel, TrainConfig, train_intent_model
from brain.intents import OUT_OF_SCOPE, TRAIN_DATA

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_TEXT_COLS = ("text", "utterance", "instruction", "sentence", "query", "question")
_LABEL_COLS = ("label", "intent", "category", "class")


class NluDataError(Exception):
    """A labelled CSV file cannot be used (missing columns, no rows)."""


@dataclass(frozen=True)
class Intent:
    """The intent model's answer for one message."""

    name: str
    confidence: float
    ranked: tuple[tuple[str, float], ...]  # the top 3, best first
    # Below the rejection threshold: the dialogue does not act on ``name``.
    unsure: bool = False

    @property
    def decision(self) -> str:
        """What the dialogue acts on: the intent, or ``out_of_scope`` when it is rejected."""
        return OUT_OF_SCOPE if self.unsure else self.name


def read_intent(
    labels: Sequence[str], probs: np.ndarray, threshold: float, oos_threshold: float = 1.0
) -> Intent:
    """The ``Intent`` for one row of class probabilities: rejected when the top intent's
    probability is below ``threshold``, or when ``out_of_scope`` itself gets at least
    ``oos_threshold`` while not on top (a message the model half places outside the shop).

    Rejection applies only to a model that knows ``out_of_scope``: one trained on a file
    without such rows has never learnt to reject, so nothing is rejected.
    """
    order = np.argsort(-probs)[:3]
    ranked = tuple((labels[i], float(probs[i])) for i in order)
    name, confidence = ranked[0]
    unsure = False
    if OUT_OF_SCOPE in labels:
        oos = float(probs[list(labels).index(OUT_OF_SCOPE)])
        unsure = confidence < threshold or oos >= oos_threshold
    return Intent(name, confidence, ranked, unsure)


def decisions(
    labels: Sequence[str], probs: np.ndarray, threshold: float, oos_threshold: float = 1.0
) -> list[str]:
    """What the dialogue acts on for each row of class probabilities (``read_intent``)."""
    return [read_intent(labels, row, threshold, oos_threshold).decision for row in probs]


class Nlu:
    """Intents and entities of customer messages for one shop."""

    def __init__(
        self,
        embedder: Embedder,
        model: IntentModel,
        order_id_pattern: str,
        threshold: float,
        oos_threshold: float,
    ) -> None:
        self.embedder = embedder  # plain sentence embeddings, for the other parts of the brain
        self.model = model
        # The rejection thresholds, ``DialogueConfig.intent_threshold`` and ``oos_threshold``.
        self.threshold = threshold
        self.oos_threshold = oos_threshold
        self.order_re = re.compile(order_id_pattern, re.IGNORECASE)
        # For a "PREFIX-\d{n}" pattern, customers often type the digits alone ("10231").
        simple = re.fullmatch(r"([A-Za-z]+-?)\\d\{(\d+)\}", order_id_pattern)
        self._prefix = simple.group(1).upper() if simple else ""
        self._bare_re = (
            re.compile(rf"(?<![\w-])\d{{{simple.group(2)}}}(?![\w-])") if simple else None
        )

    def intent(self, text: str) -> Intent:
        """Classify one message."""
        probs = self.model.probabilities([text])[0]
        return read_intent(self.model.labels, probs, self.threshold, self.oos_threshold)

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


def model_key(path: Path, config: TrainConfig) -> str:
    """The cache key of a model trained on ``path``: the file's bytes, the training settings
    and the source of the training code (a change to any of them trains a new model)."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(repr(sorted(asdict(config).items())).encode())
    for module in (augment, char_model, intent_model):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


def train_config(training: IntentTraining) -> TrainConfig:
    """The fine-tune's settings for ``training`` (the rest are ``TrainConfig``'s defaults)."""
    return TrainConfig(tuned_layers=training.tuned_layers, epochs=training.epochs)


def text_rank(text: str) -> str:
    """A fixed pseudo-random order of texts (a hash of the words): which rows a subset keeps,
    which feedback examples are held out, the same on every machine and every run."""
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


def first_per_intent(
    texts: Sequence[str], labels: Sequence[str], n: int
) -> tuple[list[str], list[str]]:
    """At most ``n`` rows of each label (0: all), the first in ``text_rank`` order."""
    if n <= 0:
        return list(texts), list(labels)
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_label.setdefault(label, []).append(text)
    out_t: list[str] = []
    out_l: list[str] = []
    for label in sorted(by_label):
        for text in sorted(by_label[label], key=text_rank)[:n]:
            out_t.append(text)
            out_l.append(label)
    return out_t, out_l


def shipped_data(training: IntentTraining) -> tuple[list[str], list[str]]:
    """The shipped model's training rows: ``brain/data/intents.csv``, or the subset
    ``training.per_intent`` asks for."""
    texts, labels = read_labelled(TRAIN_DATA, "text", "intent")
    return first_per_intent(texts, labels, training.per_intent)


def shipped_model_path(config: BrainConfig) -> Path:
    """Where the shipped model trained with ``config.intent_training`` is cached."""
    training = config.intent_training
    key = model_key(TRAIN_DATA, train_config(training))
    if training.per_intent:
        key += f"-p{training.per_intent}"
    return Path(config.cache_dir) / "intents" / f"intent-{key}.pt"


def learned_model_path(config: BrainConfig) -> Path:
    """Where ``omnigate learn`` installs a model retrained with feedback, beside the shipped
    model it replaces (a new shipped model, after a change to the data or the training code,
    is used until the next ``learn``)."""
    shipped = shipped_model_path(config)
    return shipped.with_name("learned-" + shipped.name.removeprefix("intent-"))


def load_shipped_model(
    config: BrainConfig, progress: Callable[[str], None] | None = None
) -> IntentModel:
    """The shipped intent model: read from the cache, or fine-tuned and cached when absent."""
    cached = shipped_model_path(config)
    if cached.is_file():
        return IntentModel.load(cached)
    texts, labels = shipped_data(config.intent_training)
    model = train_intent_model(texts, labels, train_config(config.intent_training), progress)
    model.save(cached)
    return model


def load_intent_model(
    config: BrainConfig, progress: Callable[[str], None] | None = None
) -> IntentModel:
    """The installed intent model: the one ``omnigate learn`` installed, else the shipped
    one (fine-tuned and cached when absent)."""
    learned = learned_model_path(config)
    if learned.is_file():
        return IntentModel.load(learned)
    return load_shipped_model(config, progress)


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
    training: TrainConfig | None = None,
) -> dict[str, float | int]:
    """Score the decisions the dialogue would act on for a labelled CSV.

    Returns ``accuracy``, ``macro_f1`` and ``n`` of the decisions (the intent, or
    ``out_of_scope`` when rejected), the rejection ``threshold`` and the share ``rejected``;
    with ``train``, also ``train_s``. With ``train``, a fresh model is fine-tuned on that file
    first (any label set; ``training``, or else the shipped model's training settings); without
    it, the installed intent model is scored (``load_intent_model``).
    """
    texts, gold = read_labelled(Path(data), text_col, label_col)
    extra: dict[str, float | int] = {}
    if train is not None:
        tr_texts, tr_labels = read_labelled(Path(train), text_col, label_col)
        started = time.perf_counter()
        model = train_intent_model(tr_texts, tr_labels, training)
        extra["train_s"] = round(time.perf_counter() - started, 1)
    else:
        model = load_intent_model(config)
    threshold, oos_threshold = config.dialogue.intent_threshold, config.dialogue.oos_threshold
    pred = decisions(model.labels, model.probabilities(texts), threshold, oos_threshold)
    rejected = sum(1 for p in pred if p == OUT_OF_SCOPE) / len(pred)
    return {
        **scores(gold, pred),
        "threshold": threshold,
        "oos_threshold": oos_threshold,
        "rejected": round(rejected, 4),
        **extra,
    }
