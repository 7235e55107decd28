"""Rebuild ``intents.csv``, the intent model's training data, from public data sets and the
hand-written examples in ``shop_examples.csv``.

Deterministic (fixed seed). Needs ``../shared/data`` (bitext-customer-support, clinc150);
the built file ships with the project, so nothing else needs that folder.
Run: ``python -m brain.data.build_intents [SHARED_DATA_DIR]``.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PER_BITEXT_INTENT = 100
PER_CLINC_SMALLTALK = 20
# Out-of-scope examples: every CLINC150 intent that no shop answers gives a few, so the model
# has seen what "not a shop question" looks like across weather, banking, travel, trivia...
PER_CLINC_OOS_INTENT = 3
CLINC_SMALLTALK = {"greeting": "greeting", "goodbye": "goodbye", "thank_you": "thanks"}
# CLINC150 intents that are shop questions, or worded like one (a bill is an invoice, a
# user name is the account, "cancel" cancels an order, "where is my luggage" is "where is my
# parcel", "how long until my new card comes" is a delivery time, cards and transfers are
# payments), or that the dialogue handles itself (yes/no replies, small talk): never used as
# out_of_scope examples, or the model learns that a customer's own wording is out of scope.
CLINC_NOT_OOS = frozenset({
    "order_status", "order", "cancel", "card_declined", "report_fraud", "pin_change",
    "account_blocked", "freeze_account", "bill_due", "pay_bill", "bill_balance",
    "min_payment", "order_checks", "redeem_rewards", "rewards_balance", "shopping_list",
    "shopping_list_update", "change_user_name", "user_name", "what_can_i_ask_you",
    "are_you_a_bot", "yes", "no", "maybe", "lost_luggage", "find_phone", "make_call",
    "replacement_card_duration", "new_card", "damaged_card", "report_lost_card",
    "expiration_date", "credit_limit", "credit_limit_change", "international_fees",
    "transfer", "balance", "transactions", "spending_history", "application_status",
    "reset_settings", "sync_device", "text", "share_location", "current_location",
    *CLINC_SMALLTALK,
})  # fmt: skip
# oos_train questions in shop wording ("how do i change my billing address") are left out.
SHOP_WORDS = re.compile(
    r"\b(order|address|payment|pay|refund|card|account|bill|ship|deliver|return|invoice|"
    r"password|buy|purchase|price|shop|store|package|parcel)",
    re.I,
)


def bitext(shared: Path, rng: random.Random) -> list[tuple[str, str, str]]:
    """Up to PER_BITEXT_INTENT utterances per intent of the Bitext training split, leaving out
    the few that the validation split repeats word for word, so that ``omnigate eval-nlu`` on
    the validation file scores unseen text."""
    folder = shared / "bitext-customer-support"
    with (folder / "intent_validation.csv").open(encoding="utf-8") as fh:
        held_out = {row["utterance"].strip().lower() for row in csv.DictReader(fh)}
    by_intent: dict[str, list[str]] = {}
    with (folder / "intent_train.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = row["utterance"].strip()
            if text.lower() not in held_out:
                by_intent.setdefault(row["intent"], []).append(text)
    out = []
    for intent in sorted(by_intent):
        texts = sorted(set(by_intent[intent]))
        for text in rng.sample(texts, k=min(PER_BITEXT_INTENT, len(texts))):
            out.append((text, intent, "bitext"))
    return out


def clinc(shared: Path, rng: random.Random) -> list[tuple[str, str, str]]:
    """Small talk and out-of-scope examples from CLINC150's train and oos_train splits (its
    val and oos_val splits stay unseen: they measure rejection)."""
    data = json.loads((shared / "clinc150" / "data_full_train_val.json").read_text())
    out = []
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    for src, label in CLINC_SMALLTALK.items():
        for text in rng.sample(sorted(by_intent[src]), k=PER_CLINC_SMALLTALK):
            out.append((text, label, "clinc150"))
    for text in sorted(t for t, _ in data["oos_train"] if not SHOP_WORDS.search(t)):
        out.append((text, "out_of_scope", "clinc150"))
    for intent in sorted(set(by_intent) - CLINC_NOT_OOS):
        for text in rng.sample(sorted(by_intent[intent]), k=PER_CLINC_OOS_INTENT):
            out.append((text, "out_of_scope", "clinc150"))
    return out


def own() -> list[tuple[str, str, str]]:
    """The hand-written examples of omnigate."""
    with (HERE / "shop_examples.csv").open(encoding="utf-8") as fh:
        return [(r["text"].strip(), r["intent"], "omnigate") for r in csv.DictReader(fh)]


def main() -> None:
    """Write intents.csv (text,intent,source)."""
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data"
    rng = random.Random(7)
    rows = bitext(shared, rng) + clinc(shared, rng) + own()
    seen: set[str] = set()
    with (HERE / "intents.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["text", "intent", "source"])
        for text, intent, source in rows:
            if text.lower() not in seen:
                seen.add(text.lower())
                w.writerow([text, intent, source])


if __name__ == "__main__":
    main()
