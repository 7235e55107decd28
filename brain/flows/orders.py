"""Order flows: track, cancel, change address, with slot filling and an ownership gate.

Slots (JSON-serialisable, kept in the session):
- ``order_id``: the order being talked about;
- ``verified_email``: an email the customer proved by naming it together with an order of
  theirs; order details are only told for orders placed with that email;
- ``pending``: ``{"flow": action, "need": "order_id" | "email" | "address" | "confirm"}``
  while a flow waits for the customer;
- ``email_failures``: wrong order/email pairs so far (after 3, a human takes over).

The gate is code, not prompt: nothing a customer writes reaches order data except through
``_owned``.
"""

from __future__ import annotations

import re
from typing import Any

from brain.flows.common import HUMAN, Answer, Context
from brain.grounding import Facts
from brain.store import CANCELLABLE, READDRESSABLE, OrderActionError, OrderRecord
from channels.schema import Button

ACTIONS = ("track", "cancel", "address")
MAX_EMAIL_FAILURES = 3


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
            return _locked(slots)  # no more guessing in this conversation
        order = _verify(ctx, slots, oid, emails[0])
        if order is None:
            return _wrong_pair(slots, action, oid)
    slots.pop("pending", None)
    if action == "cancel":
        return _ask_cancel(ctx, slots, order)
    if action == "address":
        return _ask_address(ctx, slots, order)
    return status_answer(ctx, order)


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


def _wrong_pair(slots: dict[str, Any], action: str, oid: str) -> Answer:
    """Same words whether the order exists or not: the reply must not confirm either."""
    failures = int(slots.get("email_failures", 0)) + 1
    slots["email_failures"] = failures
    if failures >= MAX_EMAIL_FAILURES:
        return _locked(slots)
    slots["pending"] = {"flow": action, "need": "email"}
    return Answer(
        f"Sorry, I couldn't find order **{oid}** with that email address. Please check the "
        "order number and the email on your order confirmation and send them again.",
        failed=True,
    )


def _locked(slots: dict[str, Any]) -> Answer:
    slots.pop("pending", None)
    slots.pop("order_id", None)
    return Answer(
        "I still can't match that order number and email, so I can't share order details. "
        "A member of our team can help you further.",
        buttons=(HUMAN,),
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
    elif order.status == "delivered":
        head = (
            f"Order {oid} was delivered (shipped on {_date(order.shipped_at)} with "
            f"{order.carrier}, tracking number {order.tracking_number}, due {_date(order.eta)})."
        )
    elif order.status == "cancelled":
        head = f"Order {oid} is cancelled, so it will not be shipped."
    else:
        head = (
            f"Order {oid} was returned. Refunds are issued within 5 working days after a "
            "return reaches our warehouse."
        )
    lines = [head, f"Items: {_items(ctx, order)}. Total: {ctx.money(order.total)}."]
    if order.address and order.status in ("processing", "shipped"):
        lines.append(f"Shipping address: {order.address}.")
    text = "\n".join(lines)
    facts = Facts(text, required=[order.order_id, order.status])
    return Answer(text, facts=facts, rephrase=False)


def _date(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "unknown"


def _not_allowed(order: OrderRecord, what: str) -> str:
    oid = f"**{order.order_id}**"
    if order.status == "shipped":
        return (
            f"Order {oid} has already shipped, so I can't {what} any more. Once it is "
            "delivered you can return it within 30 days."
        )
    if order.status == "delivered":
        return f"Order {oid} was already delivered. You can return it within 30 days of delivery."
    if order.status == "cancelled":
        return f"Order {oid} is already cancelled."
    return f"Order {oid} was returned, so I can't {what}."


def _ask_cancel(ctx: Context, slots: dict[str, Any], order: OrderRecord) -> Answer:
    if order.status not in CANCELLABLE:
        return Answer(_not_allowed(order, "cancel it"))
    slots["pending"] = {"flow": "cancel", "need": "confirm"}
    return Answer(
        f"Order **{order.order_id}** ({_items(ctx, order)}, {ctx.money(order.total)}) is still "
        "processing, so it can be cancelled free of charge. Shall I cancel it?",
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
        return Answer(_not_allowed(order, "cancel it"))
    return Answer(
        f"Done: order **{order.order_id}** is cancelled. The full amount of "
        f"{ctx.money(order.total)} is refunded to your payment method within 2 working days."
    )


def _ask_address(ctx: Context, slots: dict[str, Any], order: OrderRecord) -> Answer:
    if order.status not in READDRESSABLE:
        return Answer(_not_allowed(order, "change its address"))
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
        return Answer(_not_allowed(order, "change its address"))
    slots.pop("pending", None)
    return Answer(f"Done: order **{order.order_id}** will ship to {order.address}.")
