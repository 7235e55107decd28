"""Learning from feedback: the intent model retrained with the shipped training data and the
customers' labelled messages (``gateway.feedback``), compared with the installed model on one
held-out set, and installed only when it is not worse (``omnigate learn``).

The held-out set is fixed, so two runs (and two models) are judged on the same rows:

- one feedback example in ``FEEDBACK_HELD_OUT_ONE_IN``, chosen by a hash of its words
  (``brain.nlu.text_rank``): the same example is held out on every run, and never trained on;
  the same words said twice fall on the same side (a handful of examples none of which is
  held out that way lend the first in hash order). Neither model has seen these: they say
  whether the feedback taught the new model something.
- ``SHIPPED_HELD_OUT_PER_INTENT`` rows of each intent of ``brain/data/intents.csv``, the
  first in the same hash order. The installed model was trained on every shipped row, and so
  is the new one: these rows say what each keeps of the base intents, so a new model cannot
  win on the feedback by forgetting them (feedback that contradicts the shipped data loses
  here).

Accuracy is that of the decisions the dialogue acts on, as ``omnigate eval-nlu`` scores them:
the intent, or ``out_of_scope`` below the rejection threshold.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from brain.config import BrainConfig, IntentTraining
from brain.intent_model import IntentModel, train_intent_model
from brain.intents import TRAIN_DATA
from brain.nlu import (
    first_per_intent,
    learned_model_path,
    load_intent_model,
    read_intent,
    read_labelled,
    shipped_data,
    text_rank,
    train_config,
)

FEEDBACK_HELD_OUT_ONE_IN = 5
SHIPPED_HELD_OUT_PER_INTENT = 4


@dataclass(frozen=True)
class Labelled:
    """A customer's message and the intent it meant."""

    text: str
    label: str


@dataclass
class Outcome:
    """What ``retrain`` found: accuracies before (the installed model) and after (the new
    one), on the whole held-out set and on each part of it."""

    examples: int  # labelled feedback examples given
    unknown_labels: int  # of those, labelled with an intent the shipped data does not have
    trained_on: int  # feedback examples trained on
    held_out_feedback: int
    held_out_shipped: int
    before: float
    after: float
    before_feedback: float | None
    after_feedback: float | None
    before_shipped: float
    after_shipped: float
    training: dict[str, int] = field(default_factory=dict)
    model: IntentModel | None = field(default=None, repr=False)

    @property
    def held_out(self) -> int:
        return self.held_out_feedback + self.held_out_shipped

    @property
    def worse(self) -> bool:
        return self.after < self.before

    def summary(self) -> dict[str, object]:
        """The figures as one JSON-able object."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        return {**out, "held_out": self.held_out}


def split_feedback(examples: Sequence[Labelled]) -> tuple[list[Labelled], list[Labelled]]:
    """(to train on, held out): one in ``FEEDBACK_HELD_OUT_ONE_IN`` by the hash of its words.
    With none held out that way (a handful of examples), the first in hash order is."""
    train: list[Labelled] = []
    held: list[Labelled] = []
    for e in examples:
        (held if int(text_rank(e.text)[:8], 16) % FEEDBACK_HELD_OUT_ONE_IN == 0 else train).append(
            e
        )
    if not held and len(train) > 1:
        first = min(train, key=lambda e: text_rank(e.text))
        held = [e for e in train if text_rank(e.text) == text_rank(first.text)]
        train = [e for e in train if e not in held]
    return train, held


def shipped_held_out() -> tuple[list[str], list[str]]:
    """The shipped rows of the held-out set."""
    texts, labels = read_labelled(TRAIN_DATA, "text", "intent")
    return first_per_intent(texts, labels, SHIPPED_HELD_OUT_PER_INTENT)


def accuracy(
    model: IntentModel,
    texts: Sequence[str],
    gold: Sequence[str],
    threshold: float,
    oos_threshold: float,
) -> float:
    """The share of ``texts`` whose decision (the intent, or out_of_scope when rejected) is
    ``gold``."""
    if not texts:
        return 0.0
    probs = model.probabilities(texts)
    pred = [read_intent(model.labels, p, threshold, oos_threshold).decision for p in probs]
    return round(sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold), 4)


def retrain(
    config: BrainConfig,
    examples: Sequence[Labelled],
    training: IntentTraining | None = None,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Train a new intent model on the shipped data and ``examples`` (less the held-out ones)
    with ``training`` (default: ``config.intent_training``), and score it and the installed
    model on the held-out set. Installs nothing (``install`` does)."""
    training = training or config.intent_training
    installed = load_intent_model(config, progress)
    base_texts, base_labels = shipped_data(training)
    known = set(base_labels)
    usable = [e for e in examples if e.label in known]
    train, held = split_feedback(usable)
    texts = base_texts + [e.text for e in train]
    labels = base_labels + [e.label for e in train]
    model = train_intent_model(texts, labels, train_config(training), progress)

    threshold, oos_threshold = config.dialogue.intent_threshold, config.dialogue.oos_threshold
    shipped_texts, shipped_labels = shipped_held_out()
    fb_texts, fb_labels = [e.text for e in held], [e.label for e in held]
    all_texts, all_labels = fb_texts + shipped_texts, fb_labels + shipped_labels

    def score(m: IntentModel, t: Sequence[str], g: Sequence[str]) -> float:
        return accuracy(m, t, g, threshold, oos_threshold)

    return Outcome(
        examples=len(examples),
        unknown_labels=len(examples) - len(usable),
        trained_on=len(train),
        held_out_feedback=len(held),
        held_out_shipped=len(shipped_texts),
        before=score(installed, all_texts, all_labels),
        after=score(model, all_texts, all_labels),
        before_feedback=score(installed, fb_texts, fb_labels) if held else None,
        after_feedback=score(model, fb_texts, fb_labels) if held else None,
        before_shipped=score(installed, shipped_texts, shipped_labels),
        after_shipped=score(model, shipped_texts, shipped_labels),
        training=asdict(training),
        model=model,
    )


def install(config: BrainConfig, outcome: Outcome) -> Path:
    """Put the new model where workers load it (``brain.nlu.load_intent_model``), atomically,
    with its figures beside it (``.json``)."""
    if outcome.model is None:
        raise ValueError("no model to install")
    path = learned_model_path(config)
    outcome.model.save(path)
    report = path.with_suffix(".json")
    tmp = report.with_suffix(f".tmp{threading.get_ident()}")
    tmp.write_text(json.dumps(outcome.summary(), indent=1))
    tmp.replace(report)
    return path
