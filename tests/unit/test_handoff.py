"""Handoff routing (workers.handoff.state): which turns the bot answers, which go to the agents, and
what reaches the customer — as pure functions over a session, no Redis, no Celery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from brain.types import HistoryItem, Session
from channels import constants as K
from channels.handoff import agent_inbound
from channels.schema import ChannelName, Inbound, Outbound, Reply, User
from channels.slack.render import render_reply
from gateway.settings import load_settings
from workers.handoff import state as handoff

SETTINGS = load_settings(
    OMNIGATE_AGENT_CHANNEL="C0AGENTS",
    OMNIGATE_AGENT_TIMEOUT=120,
    SLACK_BOT_TOKEN="xoxb-test",
    SLACK_SIGNING_SECRET="test-secret",
)
CUSTOMER = User(id="cust-1", name="Ada")
AGENT = User(id="UAGENT", name="Grace")


# The agent timeouts asked for, as ``after_brain``'s scheduler receives them.
SCHEDULED: list[tuple[str, str, int]] = []


def schedule(conv: str, handoff_id: str, countdown_s: int) -> None:
    SCHEDULED.append((conv, handoff_id, countdown_s))


@pytest.fixture(autouse=True)
def scheduled() -> list[tuple[str, str, int]]:
    SCHEDULED.clear()
    return SCHEDULED


def customer(text: str, channel: ChannelName = ChannelName.telegram, **meta: str) -> Inbound:
    return Inbound(
        channel=channel,
        platform_id=text + str(id(meta)),
        user=CUSTOMER,
        conversation="42",
        text=text,
        meta=meta,
    )


def agent(text: str = "", payload: str | None = None, conv: str = "telegram:42") -> Inbound:
    return agent_inbound(
        conv, AGENT, "slack-agent:Ev", text=text, payload=payload, thread="111.222"
    )


def open_handoff(session: Session, inbound: Inbound | None = None) -> list[Outbound]:
    inbound = inbound or customer("I want a human")
    session.history.append(HistoryItem(role="user", text=inbound.text))
    return handoff.after_brain(
        inbound, session, [Reply(text="Connecting…", handoff=True)], SETTINGS, schedule
    )


def texts(outs: list[Outbound]) -> list[tuple[str, str]]:
    return [(o.conversation_key, o.replies[0].text) for o in outs]


def test_the_bot_answers_while_nobody_handed_off() -> None:
    session = Session()
    assert handoff.route(customer("hello"), session, SETTINGS) is None
    assert (
        handoff.after_brain(customer("hello"), session, [Reply(text="hi")], SETTINGS, schedule)
        == []
    )
    assert session.state == "bot"


def test_a_handoff_opens_a_thread_and_schedules_the_timeout(scheduled: list[Any]) -> None:
    session = Session(
        history=[
            HistoryItem(role="user", text="where is my order"),
            HistoryItem(role="bot", text="which one?"),
        ]
    )
    inbound = customer("I want a human", ChannelName.slack, thread_ts="5.5")
    [opening] = open_handoff(session, inbound)
    assert session.state == "with_agent"
    h = session.handoff
    assert h is not None and h.requested_at and h.reason == "I want a human"
    assert h.customer == CUSTOMER and h.customer_meta == {"thread_ts": "5.5"}
    assert (opening.channel, opening.conversation, opening.author) == (
        ChannelName.slack,
        "C0AGENTS",
        "system",
    )
    assert opening.meta == {"handoff_for": "slack:42", "opening": "1"}
    text = opening.replies[0].text
    assert "slack:42" in text and "where is my order" in text and "which one?" in text
    assert [b.payload for b in opening.replies[0].buttons] == ["og:resolve:slack:42"]
    assert scheduled == [("slack:42", h.id, 120)]


def test_no_second_thread_while_with_an_agent() -> None:
    session = Session()
    open_handoff(session)
    assert open_handoff(session) == []


def test_without_an_agents_channel_the_brains_handoff_text_stands() -> None:
    session = Session()
    no_console = load_settings(OMNIGATE_AGENT_CHANNEL="")
    out = handoff.after_brain(
        customer("human"), session, [Reply(text="x", handoff=True)], no_console, schedule
    )
    assert out == [] and session.state == "bot"


def test_customer_messages_go_to_the_thread_and_the_bot_stays_silent() -> None:
    session = Session()
    open_handoff(session)
    [fwd] = (
        handoff.route(customer("my order is 1234", ChannelName.telegram, x="1"), session, SETTINGS)
        or []
    )
    assert (fwd.conversation, fwd.meta) == (
        "C0AGENTS",
        {"handoff_for": "telegram:42", "opening": ""},
    )
    assert fwd.replies[0].text == "**Ada:** my order is 1234"
    assert session.handoff and session.handoff.customer_meta == {"x": "1"}


def test_an_agent_reply_reaches_the_customer_where_they_wrote() -> None:
    session = Session()
    open_handoff(session, customer("human", ChannelName.telegram, thread_ts="5.5"))
    [out] = handoff.route(agent("Hello, I'm Grace"), session, SETTINGS) or []
    assert (out.conversation_key, out.author, out.replies[0].text) == (
        "telegram:42",
        "agent",
        "Hello, I'm Grace",
    )
    assert out.meta == {"thread_ts": "5.5"} and out.user == CUSTOMER
    h = session.handoff
    assert h and h.agent == "Grace" and h.agent_id == "UAGENT" and h.accepted_at
    assert h.thread == "111.222"
    first = h.accepted_at
    handoff.route(agent("more"), session, SETTINGS)
    assert h.accepted_at == first


def test_return_to_bot_gives_the_conversation_back() -> None:
    session = Session(failures=2)
    open_handoff(session)
    outs = handoff.route(agent(payload=K.RESOLVE_PAYLOAD), session, SETTINGS) or []
    assert texts(outs) == [
        ("telegram:42", handoff.BACK_WITH_BOT),
        ("slack:C0AGENTS", "Grace returned the conversation to the bot."),
    ]
    assert session.state == "bot" and session.failures == 0
    assert session.handoff and session.handoff.resolved_by == "Grace"
    assert handoff.route(customer("hi again"), session, SETTINGS) is None


def test_an_agent_writing_after_the_return_is_told_not_delivered() -> None:
    session = Session()
    open_handoff(session)
    handoff.route(agent(payload=K.RESOLVE_PAYLOAD), session, SETTINGS)
    [note] = handoff.route(agent("still there?"), session, SETTINGS) or []
    assert note.conversation == "C0AGENTS" and "not sent" in note.replies[0].text


def test_the_timeout_tells_the_customer_and_offers_email() -> None:
    session = Session()
    open_handoff(session)
    assert session.handoff
    hid = session.handoff.id
    outs = handoff.route(handoff.timeout_inbound("telegram:42", hid), session, SETTINGS)
    assert texts(outs or []) == [
        ("telegram:42", handoff.NOBODY_FREE),
        (
            "slack:C0AGENTS",
            "No agent answered within 2 min; the customer was asked to leave "
            "an email. You can still answer here.",
        ),
    ]
    assert session.state == "with_agent" and session.handoff.timed_out_at
    # A second delivery of the same timeout does nothing.
    assert handoff.route(handoff.timeout_inbound("telegram:42", hid), session, SETTINGS) == []
    # The customer leaves an email: recorded, the agents told, the bot is back.
    outs = handoff.route(customer("sure, ada@example.com"), session, SETTINGS) or []
    assert [o.conversation for o in outs] == ["C0AGENTS", "C0AGENTS", "42"]
    assert "ada@example.com" in outs[2].replies[0].text
    assert session.state == "bot" and session.handoff.email == "ada@example.com"
    assert session.handoff.resolved_by == "email"


def test_a_timeout_after_the_agent_answered_or_of_an_old_handoff_is_ignored() -> None:
    session = Session()
    open_handoff(session)
    assert session.handoff
    hid = session.handoff.id
    assert handoff.route(handoff.timeout_inbound("telegram:42", "other"), session, SETTINGS) == []
    handoff.route(agent("hi"), session, SETTINGS)
    assert handoff.route(handoff.timeout_inbound("telegram:42", hid), session, SETTINGS) == []
    assert session.handoff.timed_out_at is None


PHISHING = "[Track your refund](https://evil.example/login) <!channel> <@U0BOSS>, see evil.example"


def test_customer_text_is_inert_in_the_agents_channel() -> None:
    session = Session()
    [opening] = open_handoff(session, customer(PHISHING))
    [forwarded] = handoff.route(customer(PHISHING), session, SETTINGS) or []
    for out in (opening, forwarded):
        shown = json.dumps([m.blocks for m in render_reply(out.replies[0]).parts])
        # What Slack would make live: a <url|label> link, a bare host name, a mention.
        assert "<https://" not in shown and "https://" not in shown
        assert "evil.example" not in shown and "evil[.]example" in shown
        assert "<!channel>" not in shown and "<@U0BOSS>" not in shown
        assert "Track your refund" in shown  # the agent still reads what was written


WEB_CONSOLE_ONLY = load_settings(OMNIGATE_AGENT_CHANNEL="", OMNIGATE_AGENT_WEB_CONSOLE=True)


def test_with_only_the_web_console_a_handoff_opens_without_a_slack_thread(
    scheduled: list[Any],
) -> None:
    session = Session()
    out = handoff.after_brain(
        customer("human"), session, [Reply(text="x", handoff=True)], WEB_CONSOLE_ONLY, schedule
    )
    assert out == [] and session.state == "with_agent"
    assert session.handoff and scheduled == [("telegram:42", session.handoff.id, 300)]


def test_with_only_the_web_console_the_bot_stays_silent_for_the_customer() -> None:
    session = Session()
    handoff.after_brain(
        customer("human"), session, [Reply(text="x", handoff=True)], WEB_CONSOLE_ONLY, schedule
    )
    assert handoff.route(customer("still there?"), session, WEB_CONSOLE_ONLY) == []
    assert session.state == "with_agent"


def test_close_thanks_the_customer_and_gives_the_conversation_back() -> None:
    session = Session()
    open_handoff(session)
    outs = handoff.route(agent(payload=K.CLOSE_PAYLOAD), session, SETTINGS) or []
    assert texts(outs) == [
        ("telegram:42", handoff.CLOSED),
        ("slack:C0AGENTS", "Grace closed the conversation."),
    ]
    assert session.state == "bot"
    assert session.handoff and session.handoff.resolved_by == "Grace"
