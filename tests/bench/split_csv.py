"""Split a labelled CSV into train and held-out files, stratified by label, with a fixed seed:
the BANKING77 evaluation of ``make eval`` ("train on most of train.csv, evaluate on the rest").

Run: ``python -m tests.bench.split_csv FILE.csv --label-col C --holdout 0.1 --out DIR``
(writes ``DIR/train.csv`` and ``DIR/test.csv``).
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path


def split(
    path: Path, label_col: str, holdout: float, seed: int = 0
) -> tuple[list[str], list[dict[str, str]], list[dict[str, str]]]:
    """(header, train rows, held-out rows): ``holdout`` of each label's rows, at least one."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in reader:
            by_label[row[label_col]].append(row)
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        cut = max(1, round(len(rows) * holdout))
        test += rows[:cut]
        train += rows[cut:]
    return header, train, test


def main() -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--label-col", required=True)
    p.add_argument("--holdout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    header, train, test = split(args.file, args.label_col, args.holdout, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        with (args.out / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
    print(f"{args.file}: {len(train)} rows to train on, {len(test)} held out -> {args.out}")


if __name__ == "__main__":
    main()
