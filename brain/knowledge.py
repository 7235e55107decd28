"""Retrieval of the shop's policy passages (knowledge/*.md ``##`` sections) by embedding
similarity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.embeddings import Embedder
from brain.store import Passage

# Intents whose answer lives in a known passage: a small nudge toward it, because a short
# question ("fees?") may sit closer to another passage in embedding space.
INTENT_HINTS: dict[str, tuple[str, ...]] = {
    "check_cancellation_fee": ("Cancellation fees",),
    "check_refund_policy": ("Refund policy", "Return period"),
    "get_refund": ("Refund policy", "How to return an item"),
    "track_refund": ("Refund status", "Refund times"),
    "delivery_options": ("Delivery options",),
    "delivery_period": ("Delivery times",),
    "check_payment_methods": ("Payment methods",),
    "payment_issue": ("Payment problems", "Charged twice"),
    "get_invoice": ("Getting an invoice",),
    "check_invoice": ("Getting an invoice",),
    "create_account": ("Creating an account",),
    "edit_account": ("Editing your account",),
    "delete_account": ("Deleting your account",),
    "recover_password": ("Forgotten password",),
    "registration_problems": ("Registration problems",),
    "switch_account": ("Several accounts",),
    "newsletter_subscription": ("Newsletter",),
    "review": ("Feedback and reviews",),
    "place_order": ("Placing an order",),
    "change_order": ("Changing an order",),
    "cancel_order": ("Cancelling an order",),
    "set_up_shipping_address": ("Shipping address",),
    "change_shipping_address": ("Shipping address",),
    "contact_customer_service": ("Customer service",),
    "complaint": ("Complaints",),
}
HINT_BONUS = 0.1


@dataclass(frozen=True)
class Hit:
    """A retrieved passage and its cosine similarity to the query."""

    passage: Passage
    score: float


class KnowledgeIndex:
    """Passages embedded once; ``search`` ranks them for a question."""

    def __init__(self, passages: list[Passage], embedder: Embedder) -> None:
        self.passages = passages
        self.embedder = embedder
        # Title and text together: titles carry the words customers use ("refund", "invoice").
        self.vectors = embedder.encode([f"{p.title}. {p.text}" for p in passages])

    def search(self, query: str, intent: str | None = None, k: int = 3) -> list[Hit]:
        """The ``k`` best passages for ``query``, nudged toward the intent's known passages."""
        q = self.embedder.encode([query])[0]
        sims = self.vectors @ q
        hints = INTENT_HINTS.get(intent or "", ())
        bonus = np.array([HINT_BONUS if p.title in hints else 0.0 for p in self.passages])
        order = np.argsort(-(sims + bonus))[:k]
        return [Hit(self.passages[i], float(sims[i] + bonus[i])) for i in order]

    def by_title(self, title: str) -> Passage | None:
        """A passage by its exact ``##`` title."""
        return next((p for p in self.passages if p.title == title), None)
