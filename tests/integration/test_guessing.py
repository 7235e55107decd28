"""Guessing the email of someone's order across many fresh conversations (the per-conversation
limit alone restarts with each one): the worker's limits per order, per email and per client
close the gate, and a right guess after them learns nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from brain.shop import ShopBrain
from brain.types import Session, Turn
from channels.schema import Inbound, User
from gateway.settings import load_settings
from tests.support.servers import RedisServer
from workers.guessing import LIMITS, GuessGuard

SHIPPED = "OG-10231"  # anna.dahl@example.com


@pytest.fixture(scope="module")
def brain() -> ShopBrain:
    settings = load_settings(OMNIGATE_LLM_MODEL="off", OMNIGATE_DEVICE="cpu")
    return ShopBrain(settings.brain_config())


@pytest.fixture
def guard(redis_server: RedisServer, brain: ShopBrain) -> Iterator[GuessGuard]:
    r = redis.Redis.from_url(redis_server.url(6))
    r.flushdb()
    yield GuessGuard(r, brain.nlu)
    r.flushdb()


def turn_in_a_new_conversation(brain: ShopBrain, guard: GuessGuard, text: str, client: str) -> str:
    """One message in a conversation of its own, as the worker runs it."""
    message = Inbound(
        channel="web",
        platform_id=text,
        user=User(id=f"visitor-{text}"),
        conversation=f"fresh-{text}",
        text=text,
        meta={"client": client},
    )
    session = Session()
    check = guard.before(message, session)
    [reply] = brain.respond(Turn(message=message, session=session))
    guard.after(message, session, check)
    return reply.text


def test_guessing_an_orders_email_in_fresh_conversations_is_stopped(
    brain: ShopBrain, guard: GuessGuard
) -> None:
    order = brain.store.order(SHIPPED)
    assert order is not None
    # From ever-new addresses, so only the per-order limit can stop it.
    for i in range(LIMITS["order"]):
        said = turn_in_a_new_conversation(
            brain, guard, f"where is {SHIPPED}? my email is guess{i}@example.com", f"10.0.0.{i}"
        )
        assert order.tracking_number not in said
    right = turn_in_a_new_conversation(
        brain, guard, f"where is {SHIPPED}? my email is {order.email}", "10.0.1.1"
    )
    assert order.tracking_number not in right and order.carrier not in right


def test_one_client_guessing_many_orders_is_stopped(brain: ShopBrain, guard: GuessGuard) -> None:
    order = brain.store.order(SHIPPED)
    assert order is not None
    for i in range(LIMITS["client"]):  # other orders, real or not: the same answer
        turn_in_a_new_conversation(
            brain, guard, f"status of OG-{20000 + i}, email nobody{i}@example.com", "10.9.9.9"
        )
    right = turn_in_a_new_conversation(
        brain, guard, f"status of {SHIPPED}, email {order.email}", "10.9.9.9"
    )
    assert order.tracking_number not in right


def test_an_owner_who_mistypes_once_still_gets_their_order(
    brain: ShopBrain, guard: GuessGuard
) -> None:
    order = brain.store.order(SHIPPED)
    assert order is not None
    turn_in_a_new_conversation(brain, guard, f"where is {SHIPPED}? a.dahl@example.com", "10.1.1.1")
    said = turn_in_a_new_conversation(
        brain, guard, f"where is {SHIPPED}? it's {order.email}", "10.1.1.1"
    )
    assert order.tracking_number in said
