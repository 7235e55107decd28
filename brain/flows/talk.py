"""Flows that need no order: policy answers from the knowledge passages, small talk,
hand-offs to a human, clarifying questions and out-of-scope replies."""

from __future__ import annotations

from brain.flows.common import HUMAN, MENU, Answer, Context
from brain.grounding import Facts, numbers
from brain.intents import INTENT_TITLES
from brain.knowledge import INTENT_HINTS
from brain.store import Passage
from channels.schema import Button

# Below this cosine similarity no passage is taken as the answer.
MIN_PASSAGE_SCORE = 0.3
# Without a clear intent, a passage this close to the question is still a safe answer.
CONFIDENT_PASSAGE_SCORE = 0.45
# A runner-up passage this close to the best one is shown too ("return policy" → the
# return period and the refund policy).
RUNNER_UP_GAP = 0.07


def passage_answer(ctx: Context, *passages: Passage) -> Answer:
    """Passages as the answer; an LLM rephrasing must keep all their numbers."""
    text = "\n\n".join(f"**{p.title}**: {p.text}" for p in passages)
    required = [n for n in sorted(numbers(text)) if n in text]
    facts = Facts(text, required=required)
    extra = (HUMAN,) if any(p.source == "contact.md" for p in passages) else ()
    return Answer(text, facts=facts, rephrase=len(text) < 320, quotes_policy=True, buttons=extra)


def confident_passage(ctx: Context, text: str) -> Answer | None:
    """A passage that answers ``text`` clearly on its own, else None."""
    hits = ctx.knowledge.search(text, k=1)
    if hits and hits[0].score >= CONFIDENT_PASSAGE_SCORE:
        return passage_answer(ctx, hits[0].passage)
    return None


def knowledge(ctx: Context, text: str, intent: str | None) -> Answer:
    """The best policy passage for a question."""
    if not text.strip() and intent in INTENT_HINTS:
        hit = ctx.knowledge.by_title(INTENT_HINTS[intent][0])
        if hit is not None:
            return passage_answer(ctx, hit)
    query = text.strip() or INTENT_TITLES.get(intent or "", "")
    hits = ctx.knowledge.search(query, intent=intent, k=2)
    if not hits or hits[0].score < MIN_PASSAGE_SCORE:
        return out_of_scope(ctx)
    best = [h.passage for h in hits if h.score >= hits[0].score - RUNNER_UP_GAP]
    return passage_answer(ctx, *best)


def by_title(ctx: Context, title: str) -> Answer:
    """The passage named by a ``kb:Title`` button."""
    passage = ctx.knowledge.by_title(title)
    if passage is None:
        return knowledge(ctx, title, None)
    return passage_answer(ctx, passage)


def greeting(ctx: Context) -> Answer:
    """Hello, and what the bot can do."""
    text = (
        f"Hello, welcome to {ctx.shop}! I can track your order, help with returns, refunds, "
        "delivery and payment, and find products for you. How can I help?"
    )
    return Answer(text, facts=Facts(text), buttons=MENU, rephrase=True)


def thanks(ctx: Context) -> Answer:
    """You're welcome."""
    text = "You're welcome! Is there anything else I can help you with?"
    return Answer(text, facts=Facts(text), rephrase=True)


def goodbye(ctx: Context) -> Answer:
    """Bye."""
    text = f"Thank you for visiting {ctx.shop}. Have a great day!"
    return Answer(text, facts=Facts(text), rephrase=True)


def handoff(ctx: Context, complaint: bool) -> Answer:
    """Pass the conversation to a person (the pipeline notifies the agents). With no agents'
    console nobody would answer in this chat, so the customer gets the shop's contact details
    instead of a promise."""
    sorry = "I'm sorry to hear that. " if complaint else ""
    if not ctx.agent_console:
        return Answer(
            f"{sorry}Our team doesn't answer in this chat. {ctx.contact_details()} "
            "Please add your order number if it is about an order."
        )
    hours = ctx.store.info.support_hours
    return Answer(
        f"{sorry}I'm passing you to a member of our team, who will answer here "
        f"({hours}). Please add your order number if it is about an order.",
        handoff=True,
    )


def contact(ctx: Context) -> Answer:
    """The shop's contact details from shop.toml (email, phone when given, hours)."""
    text = ctx.contact_details()
    if ctx.agent_console:
        text += " I can also pass you to a member of our team here."
    return Answer(text, buttons=(HUMAN,) if ctx.agent_console else ())


def out_of_scope(ctx: Context) -> Answer:
    """The bot cannot help with this."""
    return Answer(
        f"Sorry, I can only help with {ctx.shop}: orders and delivery, returns and refunds, "
        "payment, invoices, your account and our products.",
        buttons=MENU,
        failed=True,
        intent="out_of_scope",
    )


def clarify(ctx: Context, ranked: tuple[tuple[str, float], ...]) -> Answer:
    """Not sure what the customer wants: offer the likeliest intents as buttons."""
    options = [
        Button(title=INTENT_TITLES[name], payload=f"intent:{name}")
        for name, _ in ranked[:2]
        if name in INTENT_TITLES
    ]
    return Answer(
        "Sorry, I'm not sure I understood. Could you say it in other words, or pick one of these?",
        buttons=(*options, HUMAN),
        failed=True,
        intent="clarification",
    )
