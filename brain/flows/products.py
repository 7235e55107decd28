"""Product flows: recommendations (the recommender engineer's ``Recommender``), the
details of a product card the customer clicked (payload ``view:SKU``) and what customers
who bought it also bought (payload ``also:SKU``)."""

from __future__ import annotations

from typing import Any

from brain.flows.common import Answer, Context
from brain.grounding import Facts
from channels.schema import Button, Product

CATEGORIES_HINT = "running shoes, apparel, outdoor gear, electronics accessories or home"


def recommend(ctx: Context, slots: dict[str, Any], text: str) -> Answer:
    """Up to five products for a request, as cards with a one-line grounded intro."""
    if ctx.recommender is None:
        return Answer(
            "Sorry, product search is not available right now. You can browse the shop's "
            "categories on our website.",
            failed=True,
        )
    products: list[Product] = list(ctx.recommender.recommend(text, slots, limit=5))
    if not products:
        return Answer(
            f"I couldn't find {ctx.recommender.describe_filters(slots)}. Try a category such as "
            f"{_categories(ctx)}, a brand or a price range.",
            failed=True,
        )
    lines = [f"Here are {len(products)} products ({ctx.recommender.describe_filters(slots)}):"]
    lines += [f"- {p.title}: {p.price:.2f} {p.currency}" for p in products]
    text_out = "\n".join(lines)
    return Answer(text_out, facts=Facts(text_out), products=tuple(products))


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
    return bool(q.categories or q.brands or priced), follow_up


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
