"""Fine-tune the intent model once per seed and score each labelled file with every seed's
model: the means over seeds that issue 12 asks for, in one command (``omnigate eval-nlu``
scores one model). Each file is scored as ``eval-nlu`` scores it — the decision the dialogue
acts on, rejection thresholds included — and, with ``--thresholds``, at other top-intent
thresholds too,
so a threshold can be chosen on a development split.

Run: ``python -m tests.bench.nlu_seeds --data FILE [FILE ...] [--train FILE] [--seeds 0 1 2]
[--thresholds 0.3 0.45] [--set name=value ...]`` (``--set`` overrides a ``TrainConfig``
field for an experiment). Prints one JSON line per seed and file, then one mean line per file.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from pathlib import Path

from brain.intent_model import TrainConfig, train_intent_model
from brain.nlu import OUT_OF_SCOPE, TRAIN_DATA, decisions, read_labelled, scores
from gateway.settings import Settings


def _override(config: TrainConfig, pairs: list[str]) -> TrainConfig:
    types = {f.name: type(getattr(config, f.name)) for f in fields(config)}
    changes = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        changes[name] = types[name](value)
    return replace(config, **changes)


def main() -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, nargs="+", required=True)
    p.add_argument("--train", type=Path, default=TRAIN_DATA)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--thresholds", type=float, nargs="*", default=[])
    p.add_argument("--set", dest="overrides", nargs="*", default=[])
    args = p.parse_args()
    dialogue = Settings().brain_config().dialogue
    threshold, oos_threshold = dialogue.intent_threshold, dialogue.oos_threshold
    thresholds = sorted({threshold, *args.thresholds})
    tr_texts, tr_labels = read_labelled(args.train)
    sets = {path: read_labelled(path) for path in args.data}
    runs: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:
        config = _override(TrainConfig(seed=seed), args.overrides)
        started = time.perf_counter()
        model = train_intent_model(tr_texts, tr_labels, config)
        train_s = round(time.perf_counter() - started, 1)
        for path, (texts, gold) in sets.items():
            probs = model.probabilities(texts)
            line: dict[str, float] = {"seed": seed, "train_s": train_s}
            for t in thresholds:
                pred = decisions(model.labels, probs, t, oos_threshold)
                tag = "" if t == threshold else f"@{t}"
                line[f"accuracy{tag}"] = scores(gold, pred)["accuracy"]
                line[f"rejected{tag}"] = round(
                    sum(1 for x in pred if x == OUT_OF_SCOPE) / len(pred), 4
                )
            print(json.dumps({"data": path.name, **line}), flush=True)
            runs.setdefault(path.name, []).append(line)
    for name, lines in runs.items():
        mean = {k: round(sum(r[k] for r in lines) / len(lines), 4) for k in lines[0] if k != "seed"}
        print(
            json.dumps(
                {
                    "data": name,
                    "seeds": len(lines),
                    "threshold": threshold,
                    "oos_threshold": oos_threshold,
                    **mean,
                }
            )
        )


if __name__ == "__main__":
    main()
