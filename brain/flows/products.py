"""Product flows: recommendations (the recommender engineer's ``Recommender``), the
details of a product card the customer clicked (payload ``view:SKU``) and what customers
who bought it also bought (payload ``also:SKU``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brain.flows.common import Answer, Context
from brain.grounding import Facts
from brain.product_facts import KIND_NAMES, NUMERIC_KINDS, PERSONS, SIZE_KINDS, Constraint
from channels.schema import Button, Product

if TYPE_CHECKING:
    from brain.recommender import Search

CATEGORIES_HINT = "running shoes, apparel, outdoor gear, electronics accessories or home"


def recommend(ctx: Context, slots: dict[str, Any], text: str) -> Answer:
    """Up to five products for a request, as cards with a one-line grounded intro; "we don't
    carry X" when nothing in the catalog is close to what was asked for."""
    rec = ctx.recommender
    if rec is None:
        return Answer(
            "Sorry, product search is not available right now. You can browse the shop's "
            "categories on our website.",
            failed=True,
        )
    found = rec.search(text, slots, limit=5)
    if not found.relevant:
        what = found.query.text or "that"
        out = f"Sorry, we don't carry {what}. We sell {_categories(ctx)}."
        return Answer(out, facts=Facts(out))
    products = found.products
    if not products:
        return Answer(
            f"I couldn't find {rec.describe_filters(slots)}. Try a category such as "
            f"{_categories(ctx)}, a brand or a price range.",
            failed=True,
        )
    lines = [_intro(ctx, found)]
    for i, p in zip(found.indices, products, strict=True):
        stated = _stated(ctx, i, found.ranked_by)
        lines.append(f"- {p.title}: {p.price:.2f} {p.currency}{stated}")
    text_out = "\n".join(lines)
    return Answer(text_out, facts=Facts(text_out), products=tuple(products))


def _intro(ctx: Context, found: Search) -> str:
    """The line above the cards: what was searched, and what could not be met."""
    rec = ctx.recommender
    assert rec is not None
    what = rec.describe_filters({"last_query": found.query.to_dict()})
    n = len(found.products)
    if found.unstated:
        return (
            f"The product page doesn't say {KIND_NAMES.get(found.unstated, found.unstated)}, "
            f"so I can't compare on that. Similar products ({what}):"
        )
    if found.relaxed:
        bounds = " and ".join(_bound_words(c) for c in found.relaxed)
        return f"Nothing we sell states {bounds}. The closest ({what}):"
    if found.query.superlative and found.ranked_by:
        word = _SUPERLATIVE_WORDS.get(found.query.superlative, "best")
        return f"The {word} first, of those whose product page states it ({what}):"
    if found.query.superlative:
        kind = found.query.superlative[0]
        return (
            f"None of these states {KIND_NAMES.get(kind, 'that')}, so I can't rank them by it. "
            f"Here are {n} products ({what}):"
        )
    return f"Here are {n} products ({what}):"


_SUPERLATIVE_WORDS: dict[tuple[str, str], str] = {
    ("price", "asc"): "cheapest",
    ("price", "desc"): "most expensive",
    ("weight", "asc"): "lightest",
    ("weight", "desc"): "heaviest",
    ("temperature", "asc"): "warmest",
    ("brightness", "desc"): "brightest",
    ("size", "desc"): "biggest",
    ("size", "asc"): "smallest",
    ("battery", "desc"): "longest battery life",
}


def _bound_words(c: Constraint) -> str:
    if c.kind == PERSONS:
        return f"room for {c.value:g} or more people" if c.op == ">=" else f"{c.value:g} people"
    unit = NUMERIC_KINDS.get(c.kind, "")
    return f"{'at least' if c.op == '>=' else 'at most'} {c.value:g} {unit}".strip()


def _stated(ctx: Context, i: int, kind: str | None) -> str:
    """ " (weighs under a kilo)": what the row states on the kind the list is ordered by."""
    rec = ctx.recommender
    if rec is None or kind is None or kind == "price":
        return ""
    kinds = SIZE_KINDS if kind == "size" else (kind,)
    stated = [f.text for f in rec.index.facts[i] if f.kind in kinds]
    return f" ({stated[0]})" if stated else ""


def product_request(ctx: Context, slots: dict[str, Any], text: str) -> tuple[bool, bool]:
    """(names a catalog category or brand, refines the last product request) for ``text``.

    Lets "cheaper?" or "Sonari ones under 80" reach the recommender even when the intent
    model, trained on whole sentences, is unsure about such fragments.
    """
    rec = ctx.recommender
    if rec is None or not text:
        return False, False
    from brain.catalog_query import parse_query

    index = rec.index
    q = parse_query(text, index.categories, index.brands, index.terms)
    follow_up = bool(slots.get("last_products")) and q.is_follow_up
    # A price bound ("a daypack under 90") is a shopping request even when no category
    # word matched: the query text then ranks the whole catalog within that price.
    priced = q.min_price is not None or q.max_price is not None
    # ... unless its words are far from everything sold ("what's your phone number?" names
    # the "phone" of phone armbands, but means no product).
    names = bool(q.categories or q.brands or priced) and rec.is_relevant(text)
    return names, follow_up


def _categories(ctx: Context) -> str:
    seen: list[str] = []
    for p in ctx.store.products():
        if p.category not in seen:
            seen.append(p.category)
    return ", ".join(seen[:6]) if seen else CATEGORIES_HINT


def product_details(ctx: Context, slots: dict[str, Any], sku: str) -> Answer:
    """What the shop knows about one product, after a click on its card."""
    product = ctx.store.product(sku)
    if product is None:
        return Answer("Sorry, I can't find that product any more.", failed=True)
    if ctx.recommender is not None:
        ctx.recommender.note_click(slots, sku)
    stock = "in stock" if product.stock > 0 else "out of stock at the moment"
    brand = f" by {product.brand}" if product.brand else ""
    text = (
        f"**{product.title}**{brand} ({product.sku}): {ctx.money(product.price)}, {stock}.\n"
        f"{product.description}"
    )
    card = Product(
        sku=product.sku,
        title=product.title,
        price=product.price,
        currency=ctx.store.info.currency,
        url=product.url or None,
        image_url=product.image_url or None,
    )
    buttons = [Button(title="Show similar products", payload=f"similar:{product.sku}")]
    if ctx.recommender is not None:
        buttons.append(Button(title="Customers also bought", payload=f"also:{product.sku}"))
    return Answer(text, facts=Facts(text), products=(card,), buttons=tuple(buttons))


def similar(ctx: Context, slots: dict[str, Any], sku: str) -> Answer:
    """Products like ``sku`` (the recommender reads the clicks and last products in slots)."""
    product = ctx.store.product(sku)
    query = f"similar to {product.title}" if product else "similar products"
    return recommend(ctx, slots, query)


def also_bought(ctx: Context, slots: dict[str, Any], sku: str) -> Answer:
    """ "Customers who bought this also bought", after the button on a product's details."""
    product = ctx.store.product(sku)
    if product is None or ctx.recommender is None:
        return Answer("Sorry, I can't find that product any more.", failed=True)
    found = ctx.recommender.also_bought(sku, limit=5, slots=slots)
    if not found:
        return Answer(f"I have nothing to suggest with {product.title} yet.", failed=True)
    lines = [f"Customers who bought {product.title} also bought:"]
    lines += [f"- {p.title}: {p.price:.2f} {p.currency}" for p in found]
    text = "\n".join(lines)
    return Answer(text, facts=Facts(text), products=tuple(found))
