"""The intents the shop's intent model knows, read from its training data without loading the
model (and without torch): what an agent may settle a conversation under, what a customer's
"Did you mean…?" pick may name, and the short human name of each."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

TRAIN_DATA = Path(__file__).resolve().parent / "data" / "intents.csv"
OUT_OF_SCOPE = "out_of_scope"

# A short human name per intent, for "Did you mean …?" buttons and the agents' console.
INTENT_TITLES: dict[str, str] = {
    "track_order": "Track an order",
    "cancel_order": "Cancel an order",
    "change_order": "Change an order",
    "place_order": "Place an order",
    "change_shipping_address": "Change the delivery address",
    "set_up_shipping_address": "Set up a shipping address",
    "delivery_options": "Delivery options",
    "delivery_period": "Delivery times",
    "get_refund": "Get a refund",
    "track_refund": "Refund status",
    "check_refund_policy": "Refund policy",
    "check_cancellation_fee": "Cancellation fees",
    "check_payment_methods": "Payment methods",
    "payment_issue": "A payment problem",
    "get_invoice": "Get an invoice",
    "check_invoice": "Check an invoice",
    "create_account": "Create an account",
    "edit_account": "Edit my account",
    "delete_account": "Delete my account",
    "switch_account": "Switch accounts",
    "recover_password": "Reset my password",
    "registration_problems": "Sign-up problems",
    "newsletter_subscription": "Newsletter",
    "review": "Leave a review",
    "complaint": "Make a complaint",
    "contact_customer_service": "Contact customer service",
    "contact_human_agent": "Talk to a human",
    "product_search": "Find a product",
    "product_question": "A question about a product",
}
_OTHER_TITLES = {
    "greeting": "Greeting",
    "thanks": "Thanks",
    "goodbye": "Goodbye",
    OUT_OF_SCOPE: "Not about the shop (out of scope)",
}


@lru_cache(maxsize=1)
def known_intents() -> tuple[str, ...]:
    """Every label of the shipped training data (``out_of_scope`` included), sorted."""
    with TRAIN_DATA.open(encoding="utf-8", newline="") as fh:
        return tuple(sorted({row["intent"].strip() for row in csv.DictReader(fh)} - {""}))


def title(name: str) -> str:
    """An intent's human name."""
    return INTENT_TITLES.get(name) or _OTHER_TITLES.get(name) or name.replace("_", " ")
