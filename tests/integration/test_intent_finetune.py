"""Fine-tuning the intent model on a labelled file, as ``omnigate eval-nlu --train`` does,
with the real all-MiniLM-L6-v2 encoder (a small file, so a few optimiser steps)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import torch

from brain.intent_model import IntentModel, TrainConfig, train_intent_model

TRAIN = {
    "track_order": [
        "where is my order", "has my parcel shipped yet", "track my package",
        "when does my order arrive", "what's the status of my delivery",
        "is my order on its way", "I want to know where my purchase is",
        "can you check on my shipment",
    ],
    "get_refund": [
        "I want my money back", "refund me please", "how do I get a refund",
        "can I get reimbursed for this", "I'd like a refund for my purchase",
        "please return my money", "request a refund", "I want to be refunded",
    ],
    "greeting": [
        "hello", "hi there", "good morning", "hey", "hiya", "good evening",
        "hello, anyone there?", "hey there",
    ],
    "out_of_scope": [
        "what's the weather tomorrow", "tell me a joke", "who won the match last night",
        "set an alarm for 7", "what is the capital of peru", "how do I bake bread",
        "play some music", "translate thank you into french",
    ],
}  # fmt: skip
TEST = [
    ("where's my parcel", "track_order"),
    ("track order pls", "track_order"),
    ("give me my money back", "get_refund"),
    ("i need a refund", "get_refund"),
    ("hi", "greeting"),
    ("good afternoon", "greeting"),
    ("will it rain today", "out_of_scope"),
    ("tell me something funny", "out_of_scope"),
]


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "intent"])
        writer.writerows(rows)
    return path


def _train_rows(labels: list[str]) -> list[tuple[str, str]]:
    return [(text, label) for label in labels for text in TRAIN[label]]


def test_eval_nlu_fine_tunes_on_a_labelled_file_and_prints_one_json_line(
    tmp_path: Path,
) -> None:
    train = _write(tmp_path / "train.csv", _train_rows(["track_order", "get_refund", "greeting"]))
    data = _write(tmp_path / "test.csv", [row for row in TEST if row[1] != "out_of_scope"])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "eval-nlu",
            "--train",
            str(train),
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    result = json.loads(out.splitlines()[-1])
    assert result["n"] == 6
    assert result["accuracy"] >= 5 / 6, result
    assert {"macro_f1", "threshold", "train_s"} <= result.keys()
    assert result["rejected"] == 0  # no out_of_scope rows to learn from: nothing rejected


def test_a_fine_tuned_model_answers_the_same_after_save_and_load(tmp_path: Path) -> None:
    texts, labels = zip(*_train_rows(list(TRAIN)), strict=True)
    model = train_intent_model(list(texts), list(labels), TrainConfig(seed=1))
    assert model.labels == sorted(TRAIN)
    queries = [text for text, _ in TEST]
    right = sum(p == gold for p, (_, gold) in zip(model.predict(queries), TEST, strict=True))
    assert right >= 6, model.predict(queries)
    model.save(tmp_path / "intent.pt")
    loaded = IntentModel.load(tmp_path / "intent.pt")
    assert loaded.predict(queries) == model.predict(queries)
    assert abs(loaded.probabilities(queries) - model.probabilities(queries)).max() < 1e-4


def test_each_member_of_the_model_is_a_fine_tune_of_its_own_seed() -> None:
    texts, labels = zip(*_train_rows(["track_order", "get_refund"]), strict=True)
    model = train_intent_model(list(texts), list(labels), TrainConfig(seed=3, members=2))
    first, second = model.members
    assert not torch.equal(first.head.weight, second.head.weight)
    alone = train_intent_model(list(texts), list(labels), TrainConfig(seed=3, members=1))
    assert torch.equal(alone.members[0].head.weight, first.head.weight)  # seed 3 is seed 3
