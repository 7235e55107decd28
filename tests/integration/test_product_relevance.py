"""Products only when the catalog has relevant ones: the relevance decision of the
recommender (``Recommender.is_relevant``, thresholds in ``brain.recommender``) measured on
labelled requests for two packs (``tests/data/relevance/*.csv``: 1 = the shop sells such a
thing, 0 = it does not, or the message is no product request at all).

Prints one JSON line per pack with precision and recall; run with ``-s`` to see it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from brain.config import DEMO_STORE
from brain.embeddings import get_embedder
from brain.recommender import RELEVANCE_LEXICAL_THRESHOLD, RELEVANCE_THRESHOLD, Recommender
from brain.store import load_store
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
PACKS = {
    "demo_shop": DEMO_STORE,
    "pixelhaven": ROOT / "packs" / "pixelhaven",
}
# The decision must keep unrelated products out (precision) without hiding what is sold.
MIN_PRECISION = 0.9
MIN_RECALL = 0.9


def precision_recall(pack: str) -> dict[str, float]:
    config = load_settings(OMNIGATE_STORE=str(PACKS[pack]), OMNIGATE_DEVICE="cpu").brain_config()
    rec = Recommender(load_store(config.store), get_embedder("cpu"), config)
    with (ROOT / "data" / "relevance" / f"{pack}.csv").open(encoding="utf-8") as fh:
        rows = [(r["text"], r["relevant"] == "1") for r in csv.DictReader(fh)]
    tp = sum(1 for text, gold in rows if gold and rec.is_relevant(text))
    fp = sum(1 for text, gold in rows if not gold and rec.is_relevant(text))
    fn = sum(1 for text, gold in rows if gold and not rec.is_relevant(text))
    return {
        "threshold": RELEVANCE_THRESHOLD,
        "lexical_threshold": RELEVANCE_LEXICAL_THRESHOLD,
        "n": float(len(rows)),
        "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
    }


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_relevance_keeps_unrelated_products_out(pack: str) -> None:
    figures = precision_recall(pack)
    print(json.dumps({"pack": pack, **figures}))
    assert figures["precision"] >= MIN_PRECISION, figures
    assert figures["recall"] >= MIN_RECALL, figures
