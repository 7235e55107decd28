"""Dialogue: one customer message → a grounded ``Answer`` → replies.

Order of decisions for a turn:
1. a button payload (deterministic: ``intent:NAME``, ``kb:TITLE``, ``human``,
   ``order:ID``, ``cancel:ID``, ``keep``, ``view:SKU``, ``similar:SKU``, ``also:SKU``);
2. a flow waiting for something (order number, email, new address, a yes/no);
3. the intent model, with entities (order ids, emails) steering toward the order flow;
4. an intent the model is unsure of (below ``DialogueConfig.intent_threshold``, see
   ``brain.nlu.read_intent``): a clarifying question.
Then the LLM may rephrase the grounded answer; ``brain.grounding`` decides if it may. Quotes
of the shop's policy passages are sent as written unless ``OMNIGATE_LLM_REWORD=all``: a small
model's rewording of a policy was refused by grounding nearly every time, after seconds of
generation on a CPU.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from brain.flows import orders, product_info, products, talk
from brain.flows.common import HUMAN, Answer, Context
from brain.generation import GenerationBusy, GenerationError
from brain.generation_grounded import release_checked
from brain.grounding import check
from brain.llm import Llm
from brain.nlu import Intent
from brain.types import Session, Turn
from channels.schema import Reply

log = logging.getLogger(__name__)

ORDER_INTENTS = {
    "track_order": "track",
    "cancel_order": "cancel",
    "change_shipping_address": "address",
}
# With an order named or under discussion, these are about that order's refund.
REFUND_INTENTS = {"get_refund", "track_refund"}
HANDOFF_INTENTS = {"complaint", "contact_human_agent"}
# --- orders helper (issue 12: dates, contact, honest handoff) ---
# With an order named or under discussion, a wish to change it (size, colour) is about it.
CHANGE_INTENTS = {"change_order"}
CONTACT_INTENTS = {"contact_customer_service"}
# A returns-policy question that names an order ("can I return the headphones from X?") is
# about that order's return.
RETURN_POLICY_INTENTS = {"check_refund_policy"}
# "it still hasn't arrived", "I ordered ... last week": about one order, not delivery times.
_NOT_ARRIVED = re.compile(
    r"\b(i|we) (ordered|bought|purchased|paid for)\b|\bmy (order|parcel|package|delivery)\b|"
    r"\b(hasn't|has not|haven't|have not|hasnt|havent|still not|never|not yet|didn't|didnt)"
    r"( \w+)? (arrived|come|came|turned up|been delivered|got here|shown up)\b",
    re.I,
)
# A question ("can I return it if I don't like it?") asks for an answer, not a complaint's
# handoff.
_QUESTION = re.compile(
    r"^\s*(can|could|may|is|are|do|does|will|would|how|what|when|where|which|who|why)\b|\?\s*$",
    re.I,
)
# --- end orders helper ---
# A search, or a question on products (named, or the ones just shown).
PRODUCT_INTENTS = {"product_search", "product_question"}
FAILURES_BEFORE_HANDOFF = 2
# Below this intent confidence, an order id or email in the message means "my order" (and a
# catalog word in a message the model rejects means a product search).
ENTITY_OVERRIDE = 0.8
# A message naming something the catalog sells reaches the recommender unless the model
# rejects it at least this surely. Measured with seed 0's model on both packs' relevance sets
# (product requests reaching products: 68 of 74 at 0.9, 67 at 0.8) against CLINC150's
# out-of-scope and non-shop val questions (2140; shown products: 7 at 0.9, 7 at 0.8).
PRODUCT_OVERRIDE = 0.9
_YES = re.compile(r"^\s*(y|yes|yeah|yep|sure|ok|okay|please do|do it|confirm)\b", re.I)
_NO = re.compile(r"^\s*(n|no|nope|don't|do not|keep)\b", re.I)
_ABOUT_ORDER = re.compile(r"\b(it|its|it's|my|order|parcel|package|delivery of)\b", re.I)
# Small talk and short answers are where a small LLM adds something; keep it short.
REPHRASE_TOKENS = 64
# A rewording must mean about the same as the grounded text (cosine of MiniLM embeddings).
MIN_SIMILARITY = 0.75
_ODD = re.compile(r"\[|\{|customer:|draft reply|dear |<\|", re.I)


class Dialogue:
    """Routes turns to flows and turns their answers into replies."""

    def __init__(
        self,
        ctx: Context,
        llm: Llm | None,
        reword_quotes: bool = False,
    ) -> None:
        self.ctx = ctx
        self.llm = llm
        self.reword_quotes = reword_quotes

    def respond(self, turn: Turn) -> list[Reply]:
        """Answer one message; updates ``turn.session`` (slots, failures)."""
        session = turn.session
        text = (turn.message.text or "").strip()
        payload = (turn.message.payload or "").strip()
        answer = self._from_payload(session.slots, payload) if payload else None
        if answer is not None:
            session.last_intent = answer.intent or _payload_intent(payload)
        else:
            answer, decided = self._from_text(session.slots, text)
            session.last_intent = answer.intent or decided
        answer = self._count_failures(session, answer)
        reply_text = self._rephrase(text, answer)
        return [
            Reply(
                text=reply_text,
                buttons=answer.buttons,
                products=answer.products,
                handoff=answer.handoff,
            )
        ]

    # --- understanding → flows --------------------------------------------------------

    def _from_payload(self, slots: dict[str, Any], payload: str) -> Answer | None:
        kind, _, value = payload.partition(":")
        ctx = self.ctx
        if payload == "human":
            return talk.handoff(ctx, complaint=False)
        if payload == "keep":
            slots.pop("pending", None)
            return Answer("All right, your order stays as it is.")
        if kind == "intent" and value:
            return self._route(slots, "", Intent(value, 1.0, ((value, 1.0),)), [], [])
        if kind == "kb" and value:
            return talk.by_title(ctx, value)
        if kind == "order" and value:  # one of the verified customer's orders, picked
            pending = slots.get("pending")
            flow = str(pending.get("flow", "track")) if isinstance(pending, dict) else "track"
            return orders.order_flow(ctx, slots, flow, "", [value.upper()], [])
        if kind == "cancel" and value:
            return orders.confirm_cancel(ctx, slots, value)
        if kind == "view" and value:
            return products.product_details(ctx, slots, value)
        if kind == "similar" and value:
            return products.similar(ctx, slots, value)
        if kind == "also" and value:
            return products.also_bought(ctx, slots, value)
        return None  # unknown payload: answer the text instead

    def _from_text(self, slots: dict[str, Any], text: str) -> tuple[Answer, str]:
        """The answer, and the intent the model read (``out_of_scope`` when unsure)."""
        if not text:
            return talk.clarify(self.ctx, ()), "clarification"
        ids = self.ctx.nlu.order_ids(text)
        emails = self.ctx.nlu.emails(text)
        intent = self.ctx.nlu.intent(text)
        decided = "out_of_scope" if intent.decision == "out_of_scope" else intent.name
        pending = slots.get("pending")
        if isinstance(pending, dict):
            answer = self._continue(slots, pending, text, intent, ids, emails)
            if answer is not None:
                return answer, decided
        return self._route(slots, text, intent, ids, emails), decided

    def _continue(
        self,
        slots: dict[str, Any],
        pending: dict[str, Any],
        text: str,
        intent: Intent,
        ids: list[str],
        emails: list[str],
    ) -> Answer | None:
        """Feed a waiting flow; None when the message is about something else."""
        flow, need = str(pending.get("flow", "track")), pending.get("need")
        if need in ("order_id", "email") and (ids or emails):
            return orders.order_flow(self.ctx, slots, flow, text, ids, emails)
        # (a postcode may look like bare order digits: only a full order id counts here)
        full_id = self.ctx.nlu.order_re.search(text)
        if need == "address" and orders.looks_like_address(text) and not full_id:
            return orders.change_address(self.ctx, slots, text)
        if need == "confirm":
            if _YES.match(text):
                return orders.confirm_cancel(self.ctx, slots, str(slots.get("order_id", "")))
            if _NO.match(text):
                slots.pop("pending", None)
                return Answer("All right, your order stays as it is.")
        # Something else: drop the waiting flow, unless the customer just restates it.
        if ORDER_INTENTS.get(intent.name) == flow or intent.unsure:
            return orders.order_flow(self.ctx, slots, flow, text, ids, emails)
        slots.pop("pending", None)
        return None

    def _route(
        self,
        slots: dict[str, Any],
        text: str,
        intent: Intent,
        ids: list[str],
        emails: list[str],
    ) -> Answer:
        ctx = self.ctx
        name = intent.name
        if name in ORDER_INTENTS:
            return orders.order_flow(ctx, slots, ORDER_INTENTS[name], text, ids, emails)
        # (with an order id, a refund intent on top is enough: the id says "my order")
        if name in RETURN_POLICY_INTENTS and ids:
            return orders.order_flow(ctx, slots, "refund", text, ids, emails)
        if name in REFUND_INTENTS and (ids or not intent.unsure):
            if ids or slots.get("order_id"):
                return orders.order_flow(ctx, slots, "refund", text, ids, emails)
            return orders.offer_order_check(slots, talk.knowledge(ctx, text, name))
        if name in CHANGE_INTENTS and (ids or not intent.unsure):
            if ids or slots.get("order_id"):
                return orders.order_flow(ctx, slots, "change", text, ids, emails)
            return orders.offer_order_check(slots, talk.knowledge(ctx, text, name), "change")
        # "when will it arrive?" about the order already under discussion, or "it still
        # hasn't arrived" about one not named yet (but "how long does delivery take?" is a
        # policy question)
        if name == "delivery_period" and (
            ids
            or (slots.get("order_id") and _ABOUT_ORDER.search(text))
            or _NOT_ARRIVED.search(text)
        ):
            return orders.order_flow(ctx, slots, "eta", text, ids, emails)
        # An order number or email with no clear other wish ("OG-10231 ben@x.example"):
        # the customer wants to know about their order.
        if (ids or emails) and (intent.confidence < ENTITY_OVERRIDE or name == "out_of_scope"):
            return orders.order_flow(ctx, slots, "track", text, ids, emails)
        unsure = intent.decision == "out_of_scope"
        # --- questions on named or shown products (issue 12, item 4) ---
        if name in PRODUCT_INTENTS or unsure:
            mentions = product_info.named_products(ctx, text)
            if mentions:
                return product_info.answer(ctx, slots, text, mentions)
            if product_info.asks_about_shown(slots, text):
                return product_info.about_shown(ctx, slots, text)
        # --- end of product questions ---
        names_product, follow_up = products.product_request(ctx, slots, text)
        # A catalog word lets an unclear message reach the recommender, but not one the model
        # rejects as surely as it would overrule an order id: "will it rain in lyon" names the
        # rain jackets and means no product.
        rejected = name == "out_of_scope" and intent.confidence >= PRODUCT_OVERRIDE
        if follow_up or (unsure and names_product and not rejected):
            return products.recommend(ctx, slots, text)
        if unsure:
            # Unclear to the intent model, but maybe a plain policy question ("is there a
            # warranty?") that one passage answers well.
            answer = talk.confident_passage(ctx, text)
            if answer is not None:
                return answer
        if intent.unsure:
            return talk.clarify(ctx, intent.ranked)
        if name in CONTACT_INTENTS:
            return talk.contact(ctx)
        if name == "complaint" and _QUESTION.search(text):
            # a question is answered; a person follows an ask, a complaint or failures
            answer = talk.confident_passage(ctx, text)
            if answer is not None:
                return answer
        if name in HANDOFF_INTENTS:
            return talk.handoff(ctx, complaint=name == "complaint")
        if name == "greeting":
            return talk.greeting(ctx)
        if name == "thanks":
            return talk.thanks(ctx)
        if name == "goodbye":
            return talk.goodbye(ctx)
        if name in PRODUCT_INTENTS:
            return products.recommend(ctx, slots, text)
        if name == "out_of_scope":
            return talk.out_of_scope(ctx)
        return talk.knowledge(ctx, text, name)

    # --- failures and the LLM -----------------------------------------------------------

    def _count_failures(self, session: Session, answer: Answer) -> Answer:
        if not answer.failed:
            session.failures = 0
            return answer
        session.failures += 1
        if session.failures < FAILURES_BEFORE_HANDOFF or answer.handoff:
            return answer
        if not self.ctx.agent_console:  # nobody answers in this chat: say how to reach people
            contact = self.ctx.contact_details()
            if contact not in answer.text:
                answer.text += f"\n{contact}"
            return answer
        buttons = answer.buttons if HUMAN in answer.buttons else (*answer.buttons, HUMAN)
        answer.text += "\nWould you like me to pass you to a member of our team?"
        answer.buttons = buttons
        return answer

    def _rephrase(self, text: str, answer: Answer) -> str:
        """The LLM's wording when grounding accepts it, else the grounded text. The wording
        streams to the customer clause by clause, each checked before it is released
        (``brain.generation_grounded``); the final reply then carries the whole text."""
        if self.llm is None or not answer.rephrase or answer.facts is None or not text:
            return answer.text
        if answer.quotes_policy and not self.reword_quotes:
            return answer.text
        grounded = answer.text

        def style(clause: str, released: list[str]) -> list[str]:
            # Beyond facts, per clause: plain, and short as a whole.
            problems = ["placeholder or role text"] if _ODD.search(clause) else []
            if sum(len(s) + 1 for s in released) + len(clause) > 1.5 * len(grounded) + 40:
                problems.append("too long")
            return problems

        try:
            pieces = self.llm.stream(self._prompt(text, answer), REPHRASE_TOKENS)
            released = release_checked(pieces, answer.facts, style)
        except GenerationBusy as exc:  # expected under load: admission said no
            log.info("LLM busy, sending the grounded text: %s", exc)
            return grounded
        except GenerationError as exc:  # a failed or slow generation must not fail the turn
            log.warning("LLM generation failed, sending the grounded text: %s", exc)
            return grounded
        problems = list(released.problems)
        if released.ok:
            problems = list(check(released.text, answer.facts).problems)  # required facts
            problems += self._off_topic(released.text, grounded)
        if problems or not released.ok:
            log.debug("LLM reply rejected %s: %r", problems, released.text)
            return grounded
        return released.text

    def _off_topic(self, out: str, grounded: str) -> list[str]:
        """A rewording must be about the same thing as the grounded text."""
        a, b = self.ctx.nlu.embedder.encode([out, grounded])
        return ["off topic"] if float(a @ b) < MIN_SIMILARITY else []

    def _prompt(self, text: str, answer: Answer) -> list[dict[str, str]]:
        """The customer's message and the grounded draft to reword, without the earlier
        turns: the draft already answers in context, and with the history SmolLM2 drifted
        from it ("You're welcome!" to a "good morning" after a thanks) while every turn paid
        to prefill it. Measured on 28 small-talk turns: the first words 45 ms sooner, as
        many rewordings accepted, and fewer streamed rewordings replaced at the end."""
        system = (
            f"You are a friendly customer-service assistant of the shop {self.ctx.shop}. "
            "Rewrite the draft reply in your own words: warm, short, one or two sentences. "
            "Keep every fact. Add nothing."
        )
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Customer: {text[:300]}\nDraft reply: {answer.text}"},
        ]


def _payload_intent(payload: str) -> str:
    """A pressed button as an intent: ``intent:NAME`` is NAME, ``human`` a handoff, other
    kinds (``view``, ``also``, ``order``…) name themselves."""
    kind, _, value = payload.partition(":")
    if kind == "intent" and value:
        return value
    return "handoff" if payload == "human" else kind
