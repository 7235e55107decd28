"""What a customer hears from the demo shop, through ``POST /api/chat``, the real Celery worker
and the real models (intent model on all-MiniLM-L6-v2, SmolLM2, the recommender)."""

from __future__ import annotations

import aiohttp

from tests.conftest import chat, uid
from tests.support.servers import Stack

ORDER, EMAIL = "OG-10231", "anna.dahl@example.com"  # shipped with DHL, in the demo shop
TRACKING, ETA = "JD01460894152528", "2025-03-04"


async def test_where_is_my_order_asks_for_number_and_email_then_answers(
    http: aiohttp.ClientSession, shop_stack: Stack
) -> None:
    user = uid("shopper")
    asked = await chat(http, shop_stack, user, "Hi, where is my order?")
    assert "order number" in asked[0]["text"].lower()
    asked = await chat(http, shop_stack, user, f"it's {ORDER}")
    assert "email" in asked[0]["text"].lower()
    assert TRACKING not in asked[0]["text"]
    status = (await chat(http, shop_stack, user, EMAIL))[0]["text"]
    assert TRACKING in status and "DHL" in status
    again = (await chat(http, shop_stack, user, "and when will it arrive?"))[0]["text"]
    # the date, without asking for the email again (a late order's reply may name the
    # shop's support email)
    assert ETA in again and "email address you used" not in again.lower()


async def test_the_wrong_email_gets_no_order_details(
    http: aiohttp.ClientSession, shop_stack: Stack
) -> None:
    user = uid("mallory")
    await chat(http, shop_stack, user, f"where is order {ORDER}?")
    refused = (await chat(http, shop_stack, user, "mallory@example.com"))[0]["text"]
    assert TRACKING not in refused and "shipped" not in refused.lower()


async def test_a_policy_question_is_answered_from_the_shop_policies(
    http: aiohttp.ClientSession, shop_stack: Stack
) -> None:
    reply = await chat(http, shop_stack, uid("u"), "how long do I have to return something?")
    assert "30 days" in reply[0]["text"]


async def test_a_product_search_shows_cards_within_the_asked_price(
    http: aiohttp.ClientSession, shop_stack: Stack
) -> None:
    replies = await chat(http, shop_stack, uid("u"), "I need running shoes under 100")
    products = [p for r in replies for p in r["products"]]
    assert products, replies
    assert all(p["price"] <= 100 for p in products)


async def test_asking_for_a_human_without_an_agents_console_gives_the_contact_details(
    http: aiohttp.ClientSession, shop_stack: Stack
) -> None:
    replies = await chat(http, shop_stack, uid("u"), "I want to talk to a real person")
    assert not any(r["handoff"] for r in replies)  # nobody would answer in this chat
    assert "help@shop.example" in replies[0]["text"]
