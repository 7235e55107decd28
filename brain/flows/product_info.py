"""Questions about products the customer names: "Is the Trailfox Apex Trail waterproof?",
"do you have the Pacer Lab Pulse in size 44?", "what's the difference between A and B?".

Every answer is read from the product's own row (``product_facts``): a property the row
states is quoted in the row's words; one it does not state gets "the product page doesn't
say" and the product's link, never a guess. An out-of-stock product is said to be out of
stock, with in-stock alternatives.
"""

from __future__ import annotations

import re
from typing import Any

from brain.catalog_query import STOPWORDS, singular, tokens, wants_other
from brain.flows import products
from brain.flows.common import Answer, Context
from brain.grounding import Facts
from brain.product_facts import (
    KIND_NAMES,
    MATERIAL,
    MEASURE,
    WATERPROOF,
    Fact,
    asked_kinds,
    asked_units,
    clauses,
    comparative,
    fully_waterproof,
)
from brain.product_names import Mention
from brain.store import ProductRecord
from channels.schema import Product

# At most this many products side by side, and this many in "which one do you mean?".
MAX_COMPARED = 3
MAX_CHOICES = 5
ALTERNATIVES = 3
_STOCK = re.compile(
    r"\b(?:in\s+stock|available|availability|do\s+you\s+have|have\s+you\s+got|got\s+any|"
    r"sold\s+out|back\s+in|left)\b",
    re.I,
)
# Words of a question that ask nothing by themselves ("tell me about the X").
_ASKING = frozenset(
    """tell about info information detail details describe description more know is it
    does do its it's how what which who whether difference between compare comparison
    versus vs better or and with the a an page say says said""".split()
)
_REFERS = re.compile(r"\b(?:it|its|it's|this|that|they|them|these|those|one|ones)\b", re.I)
_ROW_LABELS = {
    WATERPROOF: "Water",
    "weight": "Weight",
    "persons": "Capacity",
    "volume": "Volume",
    "temperature": "Temperature rating",
    "brightness": "Brightness",
    "drop": "Drop",
    "battery": "Battery",
    MATERIAL: "Material",
    "size": "Sizes",
}


def named_products(ctx: Context, text: str) -> list[Mention]:
    """The products ``text`` names (loosely), or [] for a shop without a catalog index."""
    if ctx.recommender is None or not text:
        return []
    return ctx.recommender.index.names.mentions(text)


def asks_about_shown(slots: dict[str, Any], text: str) -> bool:
    """ "Is it waterproof?" after products were shown: a property asked about them."""
    return (
        bool(slots.get("last_products")) and bool(asked_kinds(text)) and bool(_REFERS.search(text))
    )


def answer(ctx: Context, slots: dict[str, Any], text: str, mentions: list[Mention]) -> Answer:
    """The answer to a question naming products (``mentions`` from ``named_products``)."""
    rec = ctx.recommender
    assert rec is not None  # mentions come from its index
    rows = rec.index.products
    single = list(dict.fromkeys(m.products[0] for m in mentions if len(m.products) == 1))
    if not single:
        tied = [rows[i] for i in mentions[0].products[:MAX_CHOICES]]
        names = "\n".join(f"- {p.title}: {ctx.money(p.price)}" for p in tied)
        n = len(mentions[0].products)
        out = f"We have {n} products by that name. Which one do you mean?\n{names}"
        return Answer(out, facts=Facts(out), products=tuple(_card(ctx, p) for p in tied))
    chosen = [rows[i] for i in single[:MAX_COMPARED]]
    if len(chosen) == 1 and (wants_other(text) or comparative(text)):
        return products.recommend(ctx, slots, text)  # "like X but lighter": X is the reference
    for p in chosen:
        rec.note_mention(slots, p.sku)
    slots["last_products"] = [p.sku for p in chosen]
    if len(chosen) >= 2:
        return compare(ctx, chosen, text)
    return about(ctx, slots, chosen[0], text)


def about_shown(ctx: Context, slots: dict[str, Any], text: str) -> Answer:
    """ "Is it waterproof?" on the product last clicked, or the products last shown."""
    store = ctx.store
    viewed = slots.get("viewed") or []
    shown = [s for s in slots.get("last_products", []) if store.product(s) is not None]
    if viewed and (not shown or viewed[-1] in shown):
        shown = [viewed[-1]]
    chosen = [p for p in (store.product(s) for s in shown[:MAX_COMPARED]) if p is not None]
    if len(chosen) == 1:
        return about(ctx, slots, chosen[0], text)
    return compare(ctx, chosen, text)


def about(ctx: Context, slots: dict[str, Any], product: ProductRecord, text: str) -> Answer:
    """One product: what the question asks, from its row; its stock; its link."""
    facts = _facts(ctx, product)
    head = f"**{product.title}** ({ctx.money(product.price)})"
    lines: list[str] = []
    unsaid = False
    kinds = asked_kinds(text)
    units = asked_units(text)
    asked = [(KIND_NAMES[k], [f for f in facts if f.kind == k]) for k in kinds]
    asked += [(f"a figure in {u}", [f for f in facts if f.unit == u]) for u in units]
    for what, stated in asked:
        if not stated:
            lines.append(f"The product page doesn't say {what}.")
            unsaid = True
            continue
        quoted = list(dict.fromkeys(f.text for f in stated))
        lines.append(f"The product page says: {'; '.join(quoted)}.")
        if stated[0].kind == WATERPROOF and not fully_waterproof(stated):
            lines.append("It doesn't say it is fully waterproof.")
    if not asked:
        found, missing = _clauses_about(product, text)
        if found:
            lines.append(f"The product page says: {'; '.join(found)}.")
        elif missing:
            lines.append(f"The product page doesn't say anything about {' '.join(missing)}.")
            unsaid = True
        elif not _STOCK.search(text):
            lines.append(product.description)
    alternatives: tuple[Product, ...] = ()
    if product.stock > 0:
        lines.append("It is in stock.")
    else:
        alternatives = _alternatives(ctx, slots, product)
        lines.append("It is out of stock at the moment.")
        if alternatives:
            lines.append("In stock and similar:")
            lines += [f"- {p.title}: {ctx.money(p.price)}" for p in alternatives]
    if unsaid and product.url:
        lines.append(f"Product page: {product.url}")
    out = f"{head}: " + "\n".join(lines)
    return Answer(out, facts=Facts(out), products=(_card(ctx, product), *alternatives))


def compare(ctx: Context, chosen: list[ProductRecord], text: str) -> Answer:
    """Two or three products side by side: price, stock, and every property one of them
    states (or the question asks); "not stated" where a row is silent."""
    all_facts = [_facts(ctx, p) for p in chosen]
    kinds = list(dict.fromkeys([*asked_kinds(text), *(f.kind for fs in all_facts for f in fs)]))
    kinds = [k for k in kinds if k in _ROW_LABELS]
    lines = [" vs ".join(f"**{p.title}**" for p in chosen) + ":"]
    lines.append("- Price: " + " · ".join(ctx.money(p.price) for p in chosen))
    lines.append(
        "- Stock: " + " · ".join("in stock" if p.stock > 0 else "out of stock" for p in chosen)
    )
    units = list(
        dict.fromkeys([*asked_units(text), *(f.unit for fs in all_facts for f in fs if f.unit)])
    )
    rows = [(_ROW_LABELS[k], lambda f, k=k: f.kind == k) for k in kinds]
    rows += [(u, lambda f, u=u: f.kind == MEASURE and f.unit == u) for u in units]
    asked = {_ROW_LABELS[k] for k in asked_kinds(text) if k in _ROW_LABELS}
    asked |= set(asked_units(text))
    shown: list[set[str]] = [set() for _ in chosen]
    for label, wanted in rows:
        cells = []
        for fs, seen in zip(all_facts, shown, strict=True):
            stated = list(dict.fromkeys(f.text for f in fs if wanted(f) and f.text not in seen))
            seen.update(stated)
            cells.append("; ".join(stated) if stated else "not stated")
        if label in asked or any(c != "not stated" for c in cells):
            lines.append(f"- {label}: " + " · ".join(cells))
    quoted = {f.text.lower() for fs in all_facts for f in fs}
    for p in chosen:
        rest = [c for c in clauses(p.description)[1:] if c.lower() not in quoted]
        if rest:
            lines.append(f"- Also, {p.title}: {', '.join(rest)}")
    out = "\n".join(lines)
    return Answer(out, facts=Facts(out), products=tuple(_card(ctx, p) for p in chosen))


def _facts(ctx: Context, product: ProductRecord) -> list[Fact]:
    rec = ctx.recommender
    assert rec is not None
    i = rec.index.by_sku.get(product.sku)
    return rec.index.facts[i] if i is not None else []


def _clauses_about(product: ProductRecord, text: str) -> tuple[list[str], list[str]]:
    """Clauses of the description that contain the question's own words (beyond the
    product's name), and the question's words no clause contains."""
    name = {singular(t) for t in tokens(product.title)} | {
        singular(t) for t in tokens(product.brand)
    }
    words = [
        singular(t)
        for t in tokens(text)
        if t not in STOPWORDS and t not in _ASKING and singular(t) not in name and not t.isdigit()
    ]
    if not words:
        return [], []
    found = []
    for clause in clauses(product.description):
        cwords = {singular(t) for t in tokens(clause)}
        if any(w in cwords for w in words):
            found.append(clause)
    return found, words


def _alternatives(
    ctx: Context, slots: dict[str, Any], product: ProductRecord
) -> tuple[Product, ...]:
    rec = ctx.recommender
    if rec is None:
        return ()
    scratch = {k: v for k, v in slots.items() if k in ("rec_history", "viewed")}
    return tuple(rec.recommend(f"similar to {product.title}", scratch, limit=ALTERNATIVES))


def _card(ctx: Context, p: ProductRecord) -> Product:
    return Product(
        sku=p.sku,
        title=p.title,
        price=p.price,
        currency=ctx.store.info.currency,
        url=p.url or None,
        image_url=p.image_url or None,
    )
