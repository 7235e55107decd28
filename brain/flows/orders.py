"""Order flows: status, delivery date, refund, cancel, change address, with slot filling and
an ownership gate.

Slots (JSON-serialisable, kept in the session):
- ``order_id``: the order being talked about;
- ``verified_email``: an email the customer proved by naming it together with an order of
  theirs; order details are only told for orders placed with that email;
- ``pending``: ``{"flow": action, "need": "order_id" | "email" | "address" | "confirm"}``
  while a flow waits for the customer;
- ``email_failures``: wrong order/email pairs so far (after 3, a human takes over).

The gate is code, not prompt: nothing a customer writes reaches order data except through
``_owned``.

Policy (return periods, refund times) is never stated here: answers quote the shop's own
knowledge passages (``Context.policy``), so each shop's terms are the ones told.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from brain.flows.common import HUMAN, Answer, Context, PolicyTopic
from brain.policy_dates import Period, days_between, is_late, read_return_period
from brain.store import CANCELLABLE, READDRESSABLE, OrderActionError, OrderRecord, Passage
from channels.schema import Button

MAX_EMAIL_FAILURES = 3

# Policy topics quoted in order answers (the titles are the demo shop's sections; another
# pack's are found by meaning and a title word).
RETURNS = PolicyTopic(("Return period",), ("return",), "how many days do I have to return an item?")
HOW_TO_RETURN = PolicyTopic(("How to return an item",), ("return",), "how do I send an item back?")
CANCEL_REFUND = PolicyTopic(("Refunds for cancelled orders",), ("cancel",), "refund when I cancel")
REFUND_TIMES = PolicyTopic(("Refund times",), ("refund",), "how long does a refund take?")
REFUND_STATUS = PolicyTopic(("Refund status",), ("refund",), "I have not received my refund yet")
READDRESS = PolicyTopic(("Shipping address",), ("address",), "change the address of an order")
LATE = PolicyTopic(
    ("Lost or damaged parcels",),
    ("late", "lost", "missing", "delay"),
    "my parcel is late, it has not arrived by its expected delivery date",
)
CHANGE = PolicyTopic(
    ("Changing an order",), ("chang",), "can I change the items of an order I placed?"
)
EXCHANGE = PolicyTopic(
    ("Exchanges",), ("exchang", "swap"), "exchange an item for another size or colour"
)
CANCEL_ORDER = Button(title="Cancel this order", payload="intent:cancel_order")


def order_flow(
    ctx: Context, slots: dict[str, Any], action: str, text: str, ids: list[str], emails: list[str]
) -> Answer:
    """Move an order flow one step: collect order id and email, then act."""
    if ids:
        slots["order_id"] = ids[0]
    oid = slots.get("order_id")
    if not oid:
        slots["pending"] = {"flow": action, "need": "order_id"}
        mine = _verified_orders(ctx, slots)
        if mine:  # the verified customer picks one of their own orders
            buttons = tuple(
                Button(
                    title=f"{o.order_id} ({o.placed_at.isoformat()})", payload=f"order:{o.order_id}"
                )
                for o in mine[:5]
            )
            return Answer("Which order do you mean?", buttons=buttons)
        return Answer(
            f"Sure. What is your order number? It looks like {_example_id(ctx)} and is in "
            "your order confirmation email."
        )
    order = _owned(ctx, slots, oid)
    if order is None:
        if not emails:
            slots["pending"] = {"flow": action, "need": "email"}
            return Answer(
                f"To protect your data: what is the email address you used for order **{oid}**?"
            )
        if int(slots.get("email_failures", 0)) >= MAX_EMAIL_FAILURES:
            return _locked(ctx, slots)  # no more guessing in this conversation
        order = _verify(ctx, slots, oid, emails[0])
        if order is None:
            return _wrong_pair(ctx, slots, action, oid)
    slots.pop("pending", None)
    if action == "cancel":
        return _ask_cancel(ctx, slots, order)
    if action == "address":
        return _ask_address(ctx, slots, order)
    if action == "eta":
        return eta_answer(ctx, order)
    if action == "refund":
        return refund_answer(ctx, order)
    if action == "change":
        return change_answer(ctx, order)
    return status_answer(ctx, order)


def offer_order_check(slots: dict[str, Any], policy: Answer, flow: str = "refund") -> Answer:
    """A question about refunds or changing an order with no order named: the shop's policy,
    and an offer to check one of the customer's orders (the next message may be its number)."""
    slots["pending"] = {"flow": flow, "need": "order_id"}
    ask = "If it is about one of your orders, send me its order number and I'll check it."
    if policy.failed:  # no passage on this: just ask
        return Answer(f"Sure. {ask}")
    policy.text = f"{policy.text}\n\n{ask}"
    return policy


def person(ctx: Context) -> tuple[str, tuple[Button, ...]]:
    """How the customer gets a person: the button to the agents' console when there is one,
    else the shop's contact details (nobody would answer in this chat)."""
    if ctx.agent_console:
        return "A member of our team can look into it for you.", (HUMAN,)
    return ctx.contact_details(), ()


def _example_id(ctx: Context) -> str:
    """A made-up id in the shop's format for simple patterns (``OG-\\d{5}`` → OG-12345)."""
    m = re.fullmatch(r"([A-Za-z]*-?)\\d\{(\d+)\}", ctx.store.info.order_id_pattern)
    if m is None:
        return "the number in your order confirmation email"
    return m.group(1) + "1234567890"[: int(m.group(2))]


def _verified_orders(ctx: Context, slots: dict[str, Any]) -> list[OrderRecord]:
    """The orders of the session's verified email, newest first."""
    email = slots.get("verified_email")
    if not email:
        return []
    return sorted(ctx.store.orders_for_email(str(email)), key=lambda o: o.placed_at, reverse=True)


def _owned(ctx: Context, slots: dict[str, Any], oid: str) -> OrderRecord | None:
    """The order, only when the session's verified email placed it."""
    verified = slots.get("verified_email")
    order = ctx.store.order(oid)
    if order is None or not verified or order.email.lower() != str(verified).lower():
        return None
    return order


def _verify(ctx: Context, slots: dict[str, Any], oid: str, email: str) -> OrderRecord | None:
    order = ctx.store.order(oid)
    if order is None or order.email.lower() != email.lower():
        return None
    slots["verified_email"] = order.email.lower()
    slots.pop("email_failures", None)
    return order


def _wrong_pair(ctx: Context, slots: dict[str, Any], action: str, oid: str) -> Answer:
    """Same words whether the order exists or not: the reply must not confirm either."""
    failures = int(slots.get("email_failures", 0)) + 1
    slots["email_failures"] = failures
    if failures >= MAX_EMAIL_FAILURES:
        return _locked(ctx, slots)
    slots["pending"] = {"flow": action, "need": "email"}
    return Answer(
        f"Sorry, I couldn't find order **{oid}** with that email address. Please check the "
        "order number and the email on your order confirmation and send them again.",
        failed=True,
    )


def _locked(ctx: Context, slots: dict[str, Any]) -> Answer:
    slots.pop("pending", None)
    slots.pop("order_id", None)
    text, buttons = person(ctx)
    return Answer(
        "I still can't match that order number and email, so I can't share order details. "
        f"A member of our team can help you further. {text}",
        buttons=buttons,
        failed=True,
    )


def _items(ctx: Context, order: OrderRecord) -> str:
    parts = []
    for sku, qty in order.items:
        product = ctx.store.product(sku)
        parts.append(f"{qty} × {product.title if product else sku} ({sku})")
    return "; ".join(parts)


def status_answer(ctx: Context, order: OrderRecord) -> Answer:
    """Status, delivery and items of an order whose owner is verified."""
    oid = f"**{order.order_id}**"
    if order.status == "processing":
        eta = f" and should arrive by {order.eta.isoformat()}" if order.eta else ""
        head = f"Order {oid} is processing: it was placed on {order.placed_at.isoformat()}{eta}."
    elif order.status == "shipped":
        eta = f" Expected delivery: {order.eta.isoformat()}." if order.eta else ""
        head = (
            f"Order {oid} has shipped on {_date(order.shipped_at)} with {order.carrier}; "
            f"tracking number {order.tracking_number}.{eta}"
        )
        if is_late(order.eta, ctx.today()):
            return _late_answer(ctx, order, head)
    elif order.status == "delivered":
        head = (
            f"Order {oid} was delivered (shipped on {_date(order.shipped_at)} with "
            f"{order.carrier}, tracking number {order.tracking_number}, due {_date(order.eta)})."
        )
    elif order.status == "cancelled":
        head = f"Order {oid} is cancelled, so it will not be shipped."
    else:
        head = f"Order {oid} was returned."
    lines = [head, f"Items: {_items(ctx, order)}. Total: {ctx.money(order.total)}."]
    if order.address and order.status in ("processing", "shipped"):
        lines.append(f"Shipping address: {order.address}.")
    if order.status == "returned":
        lines.append(_quote(ctx, REFUND_TIMES))
    return Answer("\n".join(line for line in lines if line))


def eta_answer(ctx: Context, order: OrderRecord) -> Answer:
    """When a verified customer's order arrives (or why it won't)."""
    oid = f"**{order.order_id}**"
    eta = order.eta.isoformat() if order.eta else None
    if order.status == "processing":
        text = f"Order {oid} is still processing" + (
            f" and should arrive by {eta}." if eta else "; it has no delivery date yet."
        )
    elif order.status == "shipped":
        if is_late(order.eta, ctx.today()):
            return _late_answer(ctx, order, _shipped_with(order) + ".")
        text = _shipped_with(order) + (f" and should arrive on {eta}." if eta else ".")
    elif order.status == "delivered":
        text = (
            f"Order {oid} was delivered: it shipped on {_date(order.shipped_at)} with "
            f"{order.carrier}, tracking number {order.tracking_number}."
        )
    elif order.status == "cancelled":
        text = f"Order {oid} is cancelled, so it will not be delivered."
    else:
        text = f"Order {oid} was returned, so there is no delivery to wait for."
    return Answer(text)


def refund_answer(ctx: Context, order: OrderRecord) -> Answer:
    """What a refund of this order takes, from its status and the shop's own policy."""
    oid = f"**{order.order_id}**"
    buttons: tuple[Button, ...] = ()
    if order.status == "processing":
        head = f"Order {oid} has not shipped yet, so you can cancel it instead of returning it."
        policy = _quote(ctx, CANCEL_REFUND)
        buttons = (CANCEL_ORDER,)
    elif order.status == "shipped":
        head = _shipped_with(order) + "."
        policy = _quote(ctx, RETURNS, HOW_TO_RETURN)
    elif order.status == "delivered":
        window = return_window(ctx, order)
        if window is not None:
            return window
        head = f"Order {oid} was delivered."
        policy = _quote(ctx, RETURNS, HOW_TO_RETURN)
    elif order.status == "cancelled":
        head = f"Order {oid} is cancelled."
        policy = _quote(ctx, CANCEL_REFUND)
    else:
        head = f"Order {oid} was returned to us."
        policy = _quote(ctx, REFUND_TIMES, REFUND_STATUS)
    if not policy:  # the pack says nothing on this: a person answers, the bot invents nothing
        text, more = person(ctx)
        return Answer(
            f"{head} A member of our team can tell you more about the refund. {text}",
            buttons=(*buttons, *more),
        )
    return Answer(f"{head}\n\n{policy}", buttons=buttons)


def change_answer(ctx: Context, order: OrderRecord) -> Answer:
    """What changing a verified customer's order (another size, colour, item) takes, from its
    status and the shop's own policy on changes and exchanges."""
    oid = f"**{order.order_id}**"
    if order.status == "delivered":
        window = return_window(ctx, order, EXCHANGE)
        if window is not None:
            return window
    buttons: tuple[Button, ...] = ()
    if order.status == "processing":
        head = f"Order {oid} is still processing, so it can still be cancelled."
        buttons = (CANCEL_ORDER,)
    elif order.status == "shipped":
        head = _shipped_with(order) + "."
    elif order.status == "delivered":
        head = f"Order {oid} was delivered."
    elif order.status == "cancelled":
        return Answer(f"Order {oid} is cancelled, so there is nothing left to change.")
    else:
        return Answer(f"Order {oid} was returned, so there is nothing left to change.")
    policy = _quote(ctx, CHANGE, EXCHANGE)
    if not policy:
        text, more = person(ctx)
        return Answer(f"{head} {text}", buttons=(*buttons, *more))
    return Answer(f"{head}\n\n{policy}", buttons=buttons)


def delivered_on(order: OrderRecord) -> date | None:
    """The day a delivered order arrived: the pack records its expected date (``eta``), the
    carrier's scan is not known, so that date stands for it; else the day it shipped."""
    return order.eta or order.shipped_at


def return_period(ctx: Context) -> tuple[Period, Passage] | None:
    """The shop's return period, read from its own returns passage ("within 30 days of
    delivery"), and that passage; None when no returns passage states one."""
    first = ctx.policy(RETURNS)
    candidates = [first] if first is not None else []
    for hit in ctx.knowledge.search(RETURNS.query, k=5):
        if "return" in hit.passage.title.lower() and hit.passage not in candidates:
            candidates.append(hit.passage)
    for passage in candidates:
        period = read_return_period(passage.text)
        if period is not None:
            return period, passage
    return None


def return_window(
    ctx: Context, order: OrderRecord, also: PolicyTopic | None = None
) -> Answer | None:
    """A delivered order against the shop's return period: inside, how to return it (and
    ``also``'s passage); outside, that it is, the policy, and how to reach a person. None when
    the pack states no return period or the order has no delivery date."""
    found = return_period(ctx)
    arrived = delivered_on(order)
    if found is None or arrived is None:
        return None
    period, passage = found
    today = ctx.today()
    deadline = period.end(arrived)
    oid = f"**{order.order_id}**"
    ago = days_between(arrived, today)
    when = f"Order {oid} was delivered on {arrived.isoformat()}" + (
        f", {ago} days ago" if ago > 1 else ""
    )
    if today <= deadline:
        head = (
            f"{when}, so it is within the {period} return period: you can send it back "
            f"until {deadline.isoformat()}."
        )
        # how to send it back (not the period passage again), and ``also``'s passage
        found_how = ctx.policy(HOW_TO_RETURN, skip=passage)
        quoted = [found_how] if found_how is not None else []
        extra = ctx.policy(also, skip=passage) if also is not None else None
        if extra is not None and extra not in quoted:
            quoted.append(extra)
        policy = "\n\n".join(_passage_text(p) for p in quoted) or _passage_text(passage)
        return Answer(f"{head}\n\n{policy}")
    head = (
        f"{when}, so it is outside the {period} return period, which ended on "
        f"{deadline.isoformat()}."
    )
    text, buttons = person(ctx)
    return Answer(
        f"{head}\n\n{_passage_text(passage)}\n\nIf you think it should still be taken back "
        f"(a fault, for example), our team can help. {text}",
        buttons=buttons,
    )


def _late_answer(ctx: Context, order: OrderRecord, head: str) -> Answer:
    """A shipped order past its expected date: called late, with the shop's passage on late or
    lost parcels and the way to a person."""
    eta = order.eta
    late = days_between(eta, ctx.today()) if eta else 0
    said = f"It was expected on {eta.isoformat()}, so it is late ({late} days)." if eta else ""
    policy = _quote(ctx, LATE)
    text, buttons = person(ctx)
    parts = [f"{head} {said}".strip(), policy, text]
    return Answer("\n\n".join(p for p in parts if p), buttons=buttons)


def _passage_text(passage: Passage) -> str:
    return f"**{passage.title}**: {passage.text}"


def _shipped_with(order: OrderRecord) -> str:
    """ "Order X has shipped with CARRIER (tracking number N)", without a full stop."""
    return (
        f"Order **{order.order_id}** has shipped with {order.carrier} "
        f"(tracking number {order.tracking_number})"
    )


def _quote(ctx: Context, *topics: PolicyTopic) -> str:
    """The shop's passages on ``topics`` as answer text ("" when the pack has none)."""
    found = []
    for topic in topics:
        passage = ctx.policy(topic)
        if passage is not None and passage not in found:
            found.append(passage)
    return "\n\n".join(_passage_text(p) for p in found)


def _date(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "unknown"


def _not_allowed(ctx: Context, order: OrderRecord, what: str, topic: PolicyTopic) -> Answer:
    """Why ``what`` cannot be done in the order's status, and the shop's policy on it."""
    oid = f"**{order.order_id}**"
    if order.status == "cancelled":
        return Answer(f"Order {oid} is already cancelled.")
    if order.status == "returned":
        return Answer(f"Order {oid} was returned, so I can't {what}.")
    head = (
        f"Order {oid} has already shipped, so I can't {what} any more."
        if order.status == "shipped"
        else f"Order {oid} was already delivered, so I can't {what}."
    )
    policy = _quote(ctx, topic)
    return Answer(f"{head}\n\n{policy}" if policy else head)


def _ask_cancel(ctx: Context, slots: dict[str, Any], order: OrderRecord) -> Answer:
    if order.status not in CANCELLABLE:
        return _not_allowed(ctx, order, "cancel it", RETURNS)
    slots["pending"] = {"flow": "cancel", "need": "confirm"}
    return Answer(
        f"Order **{order.order_id}** ({_items(ctx, order)}, {ctx.money(order.total)}) is still "
        "processing, so it can be cancelled. Shall I cancel it?",
        buttons=(
            Button(title="Yes, cancel it", payload=f"cancel:{order.order_id}"),
            Button(title="No, keep it", payload="keep"),
        ),
    )


def confirm_cancel(ctx: Context, slots: dict[str, Any], oid: str) -> Answer:
    """Cancel an order the customer confirmed (re-checking ownership: payloads can be typed)."""
    slots.pop("pending", None)
    order = _owned(ctx, slots, oid)
    if order is None:
        return order_flow(ctx, slots, "cancel", "", [oid], [])
    try:
        order = ctx.store.cancel_order(oid)
    except OrderActionError:
        return _not_allowed(ctx, order, "cancel it", RETURNS)
    policy = _quote(ctx, CANCEL_REFUND)
    done = f"Done: order **{order.order_id}** ({ctx.money(order.total)}) is cancelled."
    return Answer(f"{done}\n\n{policy}" if policy else done)


def _ask_address(ctx: Context, slots: dict[str, Any], order: OrderRecord) -> Answer:
    if order.status not in READDRESSABLE:
        return _not_allowed(ctx, order, "change its address", READDRESS)
    slots["pending"] = {"flow": "address", "need": "address"}
    current = f" It ships to: {order.address}." if order.address else ""
    return Answer(
        f"Order **{order.order_id}** is still processing, so its address can be changed.{current}"
        " What is the new shipping address (street and number, town, postcode)?"
    )


def looks_like_address(text: str) -> bool:
    """Street-number-and-town-ish: a digit, some letters, a few words."""
    letters = sum(c.isalpha() for c in text)
    return any(c.isdigit() for c in text) and letters >= 5 and len(text.split()) >= 3


def change_address(ctx: Context, slots: dict[str, Any], text: str) -> Answer:
    """Apply the new address the customer just sent to the verified order."""
    oid = str(slots.get("order_id", ""))
    order = _owned(ctx, slots, oid)
    if order is None:
        slots.pop("pending", None)
        return order_flow(ctx, slots, "address", "", [], [])
    address = text.strip().strip(".")
    for prefix in ("please send it to ", "send it to ", "ship it to ", "it's ", "it is ", "to "):
        if address.lower().startswith(prefix):
            address = address[len(prefix) :]
    try:
        order = ctx.store.change_address(oid, address)
    except OrderActionError:
        slots.pop("pending", None)
        return _not_allowed(ctx, order, "change its address", READDRESS)
    slots.pop("pending", None)
    return Answer(f"Done: order **{order.order_id}** will ship to {order.address}.")
