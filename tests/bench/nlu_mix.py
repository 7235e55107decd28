"""Sweep the intent model's mix (``knn_weight``, ``char_weight``, ``knn_k``,
``knn_temperature``, ``knn_floor_cosine``) without fine-tuning again: one fine-tune per seed,
one pass of each model over each labelled file (``IntentModel.opinions``), then every mix of
the grid scored as ``eval-nlu`` scores it (the dialogue's decision, rejection thresholds
included). These fields change nothing in training, so a row here is what a model trained
with that mix would score.

Run: ``python -m tests.bench.nlu_mix --data FILE [FILE ...] [--train FILE] [--seeds 0 1 2]``
(grid values with ``--knn-weight``, ``--char-weight``, ``--knn-k``, ``--temperature``,
``--floor``). Prints one JSON line per mix: its mean accuracy over seeds per file (for a file of
``out_of_scope`` rows only, that is the share rejected).
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from brain.intent_model import TrainConfig, train_intent_model
from brain.nlu import TRAIN_DATA, decisions, read_labelled
from gateway.settings import Settings


def main() -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, nargs="+", required=True)
    p.add_argument("--train", type=Path, default=TRAIN_DATA)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--knn-weight", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    p.add_argument("--char-weight", type=float, nargs="+", default=[0.15, 0.25, 0.35])
    p.add_argument("--knn-k", type=int, nargs="+", default=[3, 5, 10])
    p.add_argument("--temperature", type=float, nargs="+", default=[0.03, 0.05, 0.08])
    p.add_argument("--floor", type=float, nargs="+", default=[0.6, 0.7])
    args = p.parse_args()
    dialogue = Settings().brain_config().dialogue
    grid = list(
        itertools.product(
            args.knn_weight, args.char_weight, args.knn_k, args.temperature, args.floor
        )
    )
    train = read_labelled(args.train)
    sets = {path: read_labelled(path) for path in args.data}
    figures: dict[tuple[object, ...], dict[str, list[float]]] = {mix: {} for mix in grid}
    for seed in args.seeds:
        model = train_intent_model(*train, TrainConfig(seed=seed))
        for path, (texts, gold_labels) in sets.items():
            opinions = model.opinions(texts)
            gold = np.array(gold_labels)
            for mix in grid:
                kw, cw, k, t, floor = mix
                config = replace(
                    model.config,
                    knn_weight=kw,
                    char_weight=cw,
                    knn_k=k,
                    knn_temperature=t,
                    knn_floor_cosine=floor,
                )
                probs = model.mix(opinions, config)
                pred = decisions(
                    model.labels, probs, dialogue.intent_threshold, dialogue.oos_threshold
                )
                figure = (np.array(pred) == gold).mean()
                figures[mix].setdefault(path.name, []).append(float(figure))
    for mix, by_file in figures.items():
        kw, cw, k, t, floor = mix
        means = {name: round(sum(v) / len(v), 4) for name, v in by_file.items()}
        print(
            json.dumps(
                {
                    "knn_weight": kw,
                    "char_weight": cw,
                    "knn_k": k,
                    "knn_temperature": t,
                    "knn_floor_cosine": floor,
                    "seeds": len(args.seeds),
                    **means,
                }
            )
        )


if __name__ == "__main__":
    main()
