"""Product knowledge through the whole brain (real models, LLM off): a question on a named
product is answered from its catalog row, out of stock is said with alternatives, products
are compared side by side, superlatives and constraints rank what rows state, and nothing
unrelated is shown for what the shop does not sell."""

from __future__ import annotations

import pytest

from brain.shop import ShopBrain
from brain.types import Session, Turn
from channels.schema import Inbound, Reply, User
from gateway.settings import load_settings


@pytest.fixture(scope="module")
def brain() -> ShopBrain:
    config = load_settings(OMNIGATE_LLM_MODEL="off", OMNIGATE_DEVICE="cpu").brain_config()
    return ShopBrain(config)


class Chat:
    def __init__(self, brain: ShopBrain) -> None:
        self.brain = brain
        self.session = Session()

    def say(self, text: str) -> Reply:
        message = Inbound(
            channel="api", platform_id="p", user=User(id="u"), conversation="c", text=text
        )
        return self.brain.respond(Turn(message=message, session=self.session))[0]


def skus(reply: Reply) -> list[str]:
    return [p.sku for p in reply.products]


def test_an_unstated_property_is_not_guessed(brain: ShopBrain) -> None:
    reply = Chat(brain).say("Is the Trailfox Apex Trail waterproof?")
    assert "doesn't say whether it is waterproof" in reply.text
    assert "run-011-trailfox-apex-trail-running-shoe" in reply.text  # the product's link
    assert skus(reply) == ["RUN-011"]


def test_a_stated_property_is_quoted_from_the_row(brain: ShopBrain) -> None:
    reply = Chat(brain).say("how cold can the northpeak glacier sleeping bag go")
    assert "tested down to -5 °C" in reply.text


def test_sizes_the_row_does_not_list(brain: ShopBrain) -> None:
    reply = Chat(brain).say("do you have the Pacer Lab Pulse in size 44?")
    assert "doesn't say which sizes" in reply.text and "in stock" in reply.text


def test_out_of_stock_is_said_with_in_stock_alternatives(brain: ShopBrain) -> None:
    reply = Chat(brain).say("is the trailfox apex road running shoe in stock")
    assert "out of stock" in reply.text
    alternatives = skus(reply)[1:]
    assert alternatives and all(brain.store.product(s).stock > 0 for s in alternatives)  # type: ignore[union-attr]


def test_two_named_products_side_by_side(brain: ShopBrain) -> None:
    reply = Chat(brain).say(
        "what's the difference between the Trailfox Apex Trail and the Pacer Lab Pulse?"
    )
    assert skus(reply) == ["RUN-011", "RUN-001"]
    assert "174.99 EUR · 119.99 EUR" in reply.text
    assert "not stated · 8 mm heel-to-toe drop" in reply.text


def test_a_constraint_no_product_meets_is_said_and_the_closest_shown(brain: ShopBrain) -> None:
    reply = Chat(brain).say("I need a tent for 4 people for a festival, budget around 300")
    assert "Nothing we sell states room for 4 or more people" in reply.text
    assert reply.products and all("2-person Tent" in p.title for p in reply.products)
    assert all(240 <= p.price <= 360 for p in reply.products)


def test_a_superlative_ranks_by_the_price(brain: ShopBrain) -> None:
    reply = Chat(brain).say("whats the cheapest tent you have")
    assert skus(reply)[0] == "OUT-007"


def test_a_follow_up_question_on_the_product_just_named(brain: ShopBrain) -> None:
    chat = Chat(brain)
    chat.say("tell me about the northpeak horizon tent")
    assert "weighs under a kilo" in chat.say("is it heavy?").text


def test_a_typo_in_a_name(brain: ShopBrain) -> None:
    assert "204.99" in Chat(brain).say("how much is the northpeak glaicer sleeping bag").text


def test_what_the_shop_does_not_sell_shows_no_products(brain: ShopBrain) -> None:
    reply = Chat(brain).say("do you sell kayaks?")
    assert not reply.products
    assert "don't carry kayaks" in reply.text and "running shoes" in reply.text
    assert not Chat(brain).say("do you sell gift cards?").products
    assert not Chat(brain).say("what's your phone number?").products
