"""The shop brain with the real models on a fixed "today": late parcels, returns inside and
outside the return period, contact details from shop.toml and an honest handoff (no promise
of a person in the chat when no agents' console is configured)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from brain.config import DEMO_STORE
from brain.shop import ShopBrain
from tests.integration.test_brain import Chat, _config

TODAY = date(2025, 3, 10)
LATE = "OG-10231"  # anna.dahl@example.com, shipped, due 2025-03-04
RECENT = "OG-10308"  # leo.rossi@example.com, delivered 2025-02-22
LONG_AGO = "OG-10245"  # carla.silva@example.com, delivered 2025-01-15
PIXELHAVEN = Path(__file__).resolve().parents[1] / "packs" / "pixelhaven"


def make_brain(**extra: object) -> ShopBrain:
    return ShopBrain(_config("off", **extra), today=lambda: TODAY)


@pytest.fixture(scope="module")
def brain() -> ShopBrain:
    return make_brain()


def verified(brain: ShopBrain, text: str, oid: str) -> str:
    """The answer to ``text`` about ``oid`` once the order's email is given."""
    order = brain.store.order(oid)
    assert order is not None
    chat = Chat(brain)
    chat.say(text)
    return chat.say(order.email).text


def test_a_shipped_order_past_its_date_is_late_with_the_lost_parcel_policy(
    brain: ShopBrain,
) -> None:
    text = verified(
        brain, f"my order {LATE} never arrived, it was supposed to come months ago", LATE
    )
    assert "late (6 days)" in text and "2025-03-04" in text
    assert "5 working days after its estimated delivery date" in text  # the pack's passage
    assert "help@shop.example" in text and "will answer here" not in text


def test_an_order_not_yet_due_is_not_late() -> None:
    early = make_brain()
    early.dialogue.ctx.today = lambda: date(2025, 3, 1)
    text = verified(early, f"where is {LATE}?", LATE)
    assert "late" not in text and "Expected delivery: 2025-03-04" in text


def test_a_return_inside_the_period_is_told_how_to_return(brain: ShopBrain) -> None:
    text = verified(brain, f"I want to return the jacket from {RECENT}", RECENT)
    assert "within the 30 days return period" in text and "until 2025-03-24" in text
    assert "prepaid return label" in text
    assert "outside" not in text


def test_a_return_outside_the_period_says_so_and_gives_a_way_to_a_person(
    brain: ShopBrain,
) -> None:
    text = verified(brain, f"refund for {LONG_AGO} please", LONG_AGO)
    assert "outside the 30 days return period, which ended on 2025-02-14" in text
    assert "within 30 days of delivery" in text  # the policy, quoted
    assert "help@shop.example" in text


def test_still_not_arrived_without_an_order_asks_for_its_number(brain: ShopBrain) -> None:
    reply = Chat(brain).say("I ordered a backpack last week and it still hasn't arrived")
    assert "order number" in reply.text
    assert not reply.products and "**" not in reply.text  # no policy passages


def test_contact_details_come_from_shop_toml(brain: ShopBrain) -> None:
    for question in ("what's your phone number?", "how can I reach you", "opening hours"):
        reply = Chat(brain).say(question)
        assert "help@shop.example" in reply.text and "9:00 to 18:00" in reply.text, question
        assert not reply.products, question


def test_a_pack_with_a_phone_number_gives_it() -> None:
    reply = Chat(make_brain(OMNIGATE_STORE=str(PIXELHAVEN))).say("what's your phone number?")
    assert "+44 20 7946 0321" in reply.text and "care@pixelhaven.example" in reply.text


def test_without_an_agents_console_nobody_is_promised_in_the_chat(brain: ShopBrain) -> None:
    for said, payload in (("I want to talk to a human", None), ("", "human")):
        reply = Chat(brain).say(said, payload=payload)
        assert not reply.handoff
        assert "help@shop.example" in reply.text and "will answer here" not in reply.text


def test_with_an_agents_console_a_person_takes_over() -> None:
    console = make_brain(
        OMNIGATE_AGENT_CHANNEL="C0AGENTS", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s"
    )
    reply = Chat(console).say("I want to talk to a human")
    assert reply.handoff and "will answer here" in reply.text


def test_a_returns_question_is_not_a_complaint(brain: ShopBrain) -> None:
    reply = Chat(brain).say("can I return it if I don't like it?")
    assert "30 days" in reply.text and not reply.handoff
    assert "member of our team" not in reply.text


def test_a_double_charge_gets_the_payment_passage(brain: ShopBrain) -> None:
    reply = Chat(brain).say("I was charged twice for the same order")
    assert "authorised" in reply.text and not reply.products


def test_changing_the_size_of_an_order_is_an_exchange_answer(brain: ShopBrain) -> None:
    chat = Chat(brain)
    reply = chat.say("I want to change the size of the shoes I ordered")
    assert not reply.products
    assert "new order" in reply.text and "order number" in reply.text
    order = brain.store.order(RECENT)
    assert order is not None
    chat.say(RECENT)
    assert "within the 30 days return period" in chat.say(order.email).text


def test_a_pack_with_another_return_period_is_read_from_its_passage(tmp_path: Path) -> None:
    pack = Path(shutil.copytree(DEMO_STORE, tmp_path / "shop"))
    returns = pack / "knowledge" / "returns.md"
    text = returns.read_text().replace("within 30 days", "within 60 days")
    returns.write_text(text.replace("## Return period", "## How long returns are accepted"))
    text = verified(make_brain(OMNIGATE_STORE=str(pack)), f"refund for {LONG_AGO} please", LONG_AGO)
    assert "within the 60 days return period" in text and "until 2025-03-16" in text
