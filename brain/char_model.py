"""Character n-gram intent scores: a linear model on the TF-IDF of each word's characters, two
to five at a time.

A misspelt word keeps most of its character n-grams ("tack my ordr" still shares "rd", "ord"
and "ack" with "track my order"), while the encoder's word pieces for it change completely.
The intent model mixes these scores with the fine-tuned encoder's (``brain.intent_model``),
which is what makes it hold up on hastily typed messages and reject more of what no shop
answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier

_NGRAMS = (2, 5)


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=_NGRAMS,
        sublinear_tf=True,
        lowercase=True,
        min_df=2,  # an n-gram seen once is as likely a typo as a cue
    )


@dataclass
class CharNgramModel:
    """One-vs-rest logistic regression over character n-grams: texts → log-probabilities."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # (features,)
    coef: np.ndarray  # (labels, features)
    intercept: np.ndarray  # (labels,)
    # The fitted vectorizer's n-gram splitter, applied here with the stored vocabulary and
    # idf weights: a per-message transform through scikit-learn spends milliseconds on checks.
    _ngrams: Callable[[str], list[str]] = field(init=False, repr=False)
    _by_feature: np.ndarray = field(init=False, repr=False)  # coef transposed, row per n-gram

    def __post_init__(self) -> None:
        self._ngrams = _vectorizer().build_analyzer()
        self._by_feature = np.ascontiguousarray(self.coef.T)

    @classmethod
    def fit(
        cls, texts: Sequence[str], y: Sequence[int], n_labels: int, alpha: float, seed: int
    ) -> CharNgramModel:
        """Fit on ``texts`` whose label indices ``y`` cover all of ``0..n_labels-1``."""
        vec = _vectorizer()
        x = vec.fit_transform(list(texts))
        clf = SGDClassifier(
            loss="log_loss", alpha=alpha, max_iter=30, tol=None, random_state=seed
        ).fit(x, np.asarray(y))
        coef, intercept = clf.coef_, clf.intercept_
        if n_labels == 2:  # one binary classifier: score the first label as its opposite
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        return cls(
            {str(k): int(v) for k, v in vec.vocabulary_.items()},
            vec.idf_.astype(np.float32),
            coef.astype(np.float32),
            intercept.astype(np.float32),
        )

    def log_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Log class probabilities, shape (len(texts), labels): each label's sigmoid score,
        normalised over the labels (as scikit-learn's one-vs-rest ``predict_proba``)."""
        scores = np.tile(self.intercept.astype(np.float64), (len(texts), 1))
        for row, text in enumerate(texts):
            counts: dict[int, int] = {}
            for gram in self._ngrams(text):
                j = self.vocabulary.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(idx)))
            weights = tf * self.idf[idx]
            weights /= np.linalg.norm(weights)
            scores[row] += weights @ self._by_feature[idx]
        probs = expit(scores)
        probs /= np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
        return np.log(np.maximum(probs, 1e-9))

    def state(self) -> dict[str, Any]:
        """What ``from_state`` reads: plain types and tensors (``torch.load`` weights only)."""
        return {
            "vocabulary": self.vocabulary,
            "idf": torch.from_numpy(self.idf),
            "coef": torch.from_numpy(self.coef),
            "intercept": torch.from_numpy(self.intercept),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CharNgramModel:
        """The model ``state`` describes."""
        return cls(
            dict(state["vocabulary"]),
            state["idf"].numpy(),
            state["coef"].numpy(),
            state["intercept"].numpy(),
        )
