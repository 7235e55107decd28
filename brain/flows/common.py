"""What every flow shares: the turn's context and the grounded answer it builds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from brain.grounding import Facts
from channels.schema import Button, Product

if TYPE_CHECKING:
    from brain.knowledge import KnowledgeIndex
    from brain.nlu import Nlu
    from brain.recommender import Recommender
    from brain.store import Passage, StoreBackend

# A passage found by meaning must be at least this close to stand for a policy topic.
POLICY_MIN_SCORE = 0.45

HUMAN = Button(title="Talk to a human", payload="human")
TRACK = Button(title="Track an order", payload="intent:track_order")
RETURNS = Button(title="Returns policy", payload="kb:Return period")
DELIVERY = Button(title="Delivery options", payload="kb:Delivery options")
MENU = (TRACK, RETURNS, DELIVERY, HUMAN)


@dataclass(frozen=True)
class PolicyTopic:
    """A policy an order answer may quote: the section titles packs usually give it, words
    one of which any other section must have in its title to stand for it (meaning alone
    confuses "return period" with "lost parcels"), and a question that ranks such sections."""

    titles: tuple[str, ...]
    title_words: tuple[str, ...]
    query: str


@dataclass
class Answer:
    """A grounded reply of one turn, before the LLM may rephrase it.

    ``facts`` are what an LLM rephrasing may state; ``rephrase`` says whether it may try;
    ``quotes_policy`` marks text that quotes the shop's policy passages (reworded only when the
    deployment asks for it). ``failed`` marks a turn where the bot could not help (counted in
    ``session.failures``). ``intent`` names what the turn was taken for, where the flow knows
    better than the intent model ("clarification", "out_of_scope"); the conversation records
    keep it (``Session.last_intent``).
    """

    text: str
    facts: Facts | None = None
    buttons: tuple[Button, ...] = ()
    products: tuple[Product, ...] = ()
    handoff: bool = False
    rephrase: bool = False
    quotes_policy: bool = False
    failed: bool = False
    intent: str = ""


@dataclass
class Context:
    """The shop-wide parts a flow may use (built once per process)."""

    store: StoreBackend
    nlu: Nlu
    knowledge: KnowledgeIndex
    recommender: Recommender | None  # None: a shop without product search
    today: Callable[[], date] = date.today  # the brain's clock; tests fix it
    # Whether an agents' console (today a Slack channel) is configured: only then may the bot
    # say that a person will answer in this chat.
    agent_console: bool = False

    @property
    def shop(self) -> str:
        """The shop's name."""
        return self.store.info.name

    def contact_details(self) -> str:
        """How to reach the shop's people, from shop.toml: email, phone when given, hours."""
        info = self.store.info
        phone = f" or by phone on {info.support_phone}" if info.support_phone else ""
        return (
            f"You can reach our team by email at {info.support_email}{phone}, {info.support_hours}."
        )

    def money(self, amount: float) -> str:
        """A price as the shop writes it: ``129.99 EUR``."""
        return f"{amount:.2f} {self.store.info.currency}"

    def policy(self, topic: PolicyTopic, skip: Passage | None = None) -> Passage | None:
        """The shop's own passage on ``topic``: the first of its usual titles the pack has,
        else the closest passage whose title names the topic, else None (``skip`` is never
        the answer: a passage already quoted). Order answers quote it instead of stating
        policy themselves, so each shop's own terms are the ones told."""
        for title in topic.titles:
            passage = self.knowledge.by_title(title)
            if passage is not None and passage != skip:
                return passage
        for hit in self.knowledge.search(topic.query, k=5):
            title = hit.passage.title.lower()
            if hit.passage == skip:
                continue
            if hit.score >= POLICY_MIN_SCORE and any(w in title for w in topic.title_words):
                return hit.passage
        return None
