"""The shop's numbers from conversation records (``gateway.stats``): the definitions the
README gives, on records written by hand."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import make_mocked_request

from brain.embeddings import get_embedder
from gateway.admin import allowed
from gateway.records import ConversationRecord, HandoffRecord, TurnRecord
from gateway.settings import load_settings
from gateway.stats import compute, group_questions, parse_since

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def conversation(
    conv: str = "api:ann",
    *,
    hours_ago: float = 30,
    satisfied: bool | None = None,
    handoff: bool = False,
    intents: tuple[str, ...] = ("greeting",),
) -> ConversationRecord:
    start = NOW - timedelta(hours=hours_ago)
    turns = [
        TurnRecord(at=start, replied_at=start + timedelta(seconds=2), intent=i) for i in intents
    ]
    handoffs = [HandoffRecord(id="h1", requested_at=start)] if handoff else []
    return ConversationRecord(
        conv=conv,
        channel=conv.split(":")[0],
        started_at=start,
        last_at=start + timedelta(minutes=1),
        turns=turns,
        handoffs=handoffs,
        satisfied=satisfied,
    )


def figures(*convs: ConversationRecord) -> dict[str, object]:
    return compute(convs, now=NOW, since=NOW - timedelta(days=7), price_per_1k=0.5, embed=None)


def test_a_quiet_conversation_a_day_old_without_a_person_is_resolved() -> None:
    assert figures(conversation())["resolution_rate"] == 1.0


def test_a_conversation_handed_to_a_person_is_not_resolved() -> None:
    f = figures(conversation(handoff=True))
    assert f["resolution_rate"] == 0.0 and f["handoffs"] == 1 and f["handoff_rate"] == 1.0


def test_a_customer_back_within_a_day_was_not_resolved() -> None:
    first = conversation(hours_ago=40)
    again = conversation(hours_ago=30)
    assert figures(first, again)["resolved"] == 1  # the second one only


def test_a_recent_conversation_is_pending_until_answered_yes() -> None:
    assert figures(conversation(hours_ago=1))["pending"] == 1
    assert figures(conversation(hours_ago=1, satisfied=True))["resolution_rate"] == 1.0


def test_csat_is_the_share_of_yes() -> None:
    f = figures(
        conversation("api:a", satisfied=True),
        conversation("api:b", satisfied=True),
        conversation("web:c", satisfied=False),
    )
    assert f["csat"] == round(2 / 3, 4) and f["per_channel"] == {"api": 2, "web": 1}


def test_the_cost_per_conversation_follows_the_price_per_1k_tokens() -> None:
    c = conversation()
    c.turns[0].tokens = 2000
    assert figures(c)["estimated_cost_per_conversation"] == 1.0


def test_the_same_question_in_other_words_is_one_group() -> None:
    questions = [
        "do you sell gift cards?",
        "can I buy a gift card",
        "gift vouchers available?",
        "what is the capital of France",
    ]
    groups = group_questions(questions, get_embedder("cpu").encode)
    assert groups[0]["count"] == 3
    assert "capital of France" in groups[-1]["question"]


def test_since_reads_days_and_hours() -> None:
    assert parse_since("7d") == timedelta(days=7) and parse_since("24h") == timedelta(hours=24)


def test_the_admin_page_asks_for_the_api_token_when_one_is_set() -> None:
    settings = load_settings(OMNIGATE_API_TOKEN="s3cret")
    good = base64.b64encode(b"admin:s3cret").decode()
    assert not allowed(make_mocked_request("GET", "/admin"), settings)
    signed = make_mocked_request("GET", "/admin", headers={"Authorization": f"Basic {good}"})
    assert allowed(signed, settings)


def test_agents_times_run_from_the_handoff_to_the_first_reply_and_the_resolution() -> None:
    c = conversation(handoff=True)
    h = c.handoffs[0]
    h.agent, h.accepted_at = "Grace", h.requested_at + timedelta(seconds=90)
    h.resolved_at = h.requested_at + timedelta(minutes=10)
    agents = figures(c)["agents"]
    assert agents == {
        "median_first_reply_s": 90.0,
        "median_handling_s": 600.0,
        "answered": 1,
        "timed_out": 0,
    }
