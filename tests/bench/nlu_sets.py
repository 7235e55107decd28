"""Write the held-out intent evaluation files of ``make eval`` from ``../shared/data``:

- ``shifted.csv``: Bitext customer-support utterances the intent model never trained on, in
  the shapes customers type them — the validation split typed hastily (seeded typos, lower
  case, no punctuation: another noise process than the training augmenter's), the Bitext
  LLM-set instructions that neither Bitext intent split holds, and ``data/own_words.csv``
  (questions written for this project in customers' own words, never trained on); a row whose
  text the shipped training file (``brain/data/intents.csv``) holds is left out;
- ``clinc_oos_val.csv``: CLINC150's out-of-scope validation questions, labelled
  ``out_of_scope`` (rows that measure rejection).

Run: ``python -m tests.bench.nlu_sets SHARED_DATA_DIR --out DIR``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

OWN_WORDS = Path(__file__).resolve().parent / "data" / "own_words.csv"
TRAIN_DATA = Path(__file__).resolve().parents[2] / "brain" / "data" / "intents.csv"


def hasty(text: str, rng: random.Random) -> str:
    """``text`` lower-cased, without punctuation, with two letters dropped from long words."""
    words = text.lower().split()
    for _ in range(2):
        i = rng.randrange(len(words))
        if len(words[i]) > 3:
            j = rng.randrange(1, len(words[i]) - 1)
            words[i] = words[i][:j] + words[i][j + 1 :]
    return "".join(c for c in " ".join(words) if c.isalnum() or c in " '")


def shifted(shared: Path) -> list[tuple[str, str]]:
    """(text, intent) rows of the shifted Bitext sample (see the module docstring)."""
    folder = shared / "bitext-customer-support"
    with (folder / "intent_validation.csv").open(encoding="utf-8") as fh:
        val = [(r["utterance"].strip(), r["intent"]) for r in csv.DictReader(fh)]
    with (folder / "intent_train.csv").open(encoding="utf-8") as fh:
        seen = {r["utterance"].strip().lower() for r in csv.DictReader(fh)}
    seen |= {t.lower() for t, _ in val}
    rng = random.Random(777)
    rows = [(hasty(t, rng), label) for t, label in val]
    with (folder / "llm_train_responses_4514.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            text = r["instruction"].strip()
            if text.lower() not in seen:
                seen.add(text.lower())
                rows.append((text, r["intent"]))
    with OWN_WORDS.open(encoding="utf-8") as fh:
        rows += [(r["text"], r["intent"]) for r in csv.DictReader(fh)]
    with TRAIN_DATA.open(encoding="utf-8") as fh:
        trained = {r["text"].strip().lower() for r in csv.DictReader(fh)}
    return [(t, label) for t, label in rows if t.strip().lower() not in trained]


def clinc_oos_val(shared: Path) -> list[tuple[str, str]]:
    """CLINC150's oos_val questions as rows labelled out_of_scope."""
    data = json.loads((shared / "clinc150" / "data_full_train_val.json").read_text())
    return [(text, "out_of_scope") for text, _ in data["oos_val"]]


def main() -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("shared", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("shifted", shifted(args.shared)),
        ("clinc_oos_val", clinc_oos_val(args.shared)),
    ):
        with (args.out / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "intent"])
            writer.writerows(rows)
        print(f"{args.out / name}.csv: {len(rows)} rows")


if __name__ == "__main__":
    main()
