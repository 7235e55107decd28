"""The conversation-test runner's own logic: reading files (and naming what is wrong in a
malformed one) and checking replies, with a scripted brain standing in for the shop brain."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from brain.conversation_tests import (
    ConversationFileError,
    format_report,
    load_suite,
    run_suite,
)
from brain.types import Turn
from channels.schema import Button, Product, Reply


class ScriptedBrain:
    """Answers each text from a fixed table, like a shop brain would."""

    def __init__(self, answers: dict[str, Reply]) -> None:
        self.answers = answers
        self.sessions: list[object] = []  # the objects, not id()s: a freed id is reused

    def respond(self, turn: Turn) -> list[Reply]:
        self.sessions.append(turn.session)
        key = turn.message.text or f"payload:{turn.message.payload}"
        return [self.answers[key]]


BRAIN = ScriptedBrain(
    {
        "can I return it?": Reply(
            text="You can return any item within 30 days of delivery.",
            buttons=(Button(title="Talk to a human", payload="human"),),
        ),
        "show me tents": Reply(
            text="Here are 2 tents.",
            products=(
                Product(sku="OUT-001", title="Tent A", price=99.0, currency="EUR"),
                Product(sku="OUT-002", title="Tent B", price=199.0, currency="EUR"),
            ),
        ),
        "payload:human": Reply(text="Write to help@shop.example.", handoff=True),
    }
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_suite_that_matches_the_replies_passes(tmp_path: Path) -> None:
    suite = load_suite(
        write(
            tmp_path,
            """
today: 2025-03-10
conversations:
  - name: returns
    turns:
      - user: "can I return it?"
        expect:
          contains: ["30 DAYS"]
          contains_any: ["return", "send it back"]
          not_contains: ["member of our team"]
          products: none
          handoff: false
          buttons_contain: ["talk to"]
  - name: tents, then a person
    turns:
      - user: "show me tents"
        expect: {products: [OUT-002], handoff: false}
      - user: "show me tents"
        expect: {products: {min: 1, max: 2}}
      - payload: "human"
        expect: {handoff: true, products: none}
""",
        )
    )
    assert suite.today == date(2025, 3, 10)
    results = run_suite(suite, BRAIN)
    assert [r.passed for r in results] == [True, True]
    assert "2/2 conversations passed" in format_report(suite, results)


def test_a_failing_turn_is_reported_with_what_is_wrong_and_the_reply(tmp_path: Path) -> None:
    suite = load_suite(
        write(
            tmp_path,
            """
conversations:
  - name: tents are not a return answer
    turns:
      - user: "show me tents"
        expect:
          contains: ["30 days"]
          products: none
          handoff: true
      - user: "can I return it?"
""",
        )
    )
    [result] = run_suite(suite, BRAIN)
    assert not result.passed
    assert result.failed_turn == 1
    assert result.problems == [
        "missing '30 days'",
        "products: expected none, got 2 (OUT-001, OUT-002)",
        "handoff: expected true",
    ]
    report = format_report(suite, [result])
    assert "FAIL" in report and "0/1 conversations passed" in report
    assert "reply: Here are 2 tents." in report


def test_a_known_failure_is_reported_but_does_not_fail_the_run(tmp_path: Path) -> None:
    suite = load_suite(
        write(
            tmp_path,
            """
conversations:
  - name: tents are not a return answer
    known_failure: the bot shows products here
    turns:
      - user: "show me tents"
        expect: {products: none}
  - name: returns
    known_failure: fixed since
    turns:
      - user: "can I return it?"
        expect: {contains: ["30 days"]}
""",
        )
    )
    results = run_suite(suite, BRAIN)
    assert [r.mark for r in results] == ["KNOWN", "FIXED"]
    assert all(r.ok for r in results)
    report = format_report(suite, results)
    assert "1/2 conversations passed, 1 known failure(s)" in report
    assert "known failure: the bot shows products here" in report


def test_each_conversation_gets_a_fresh_session(tmp_path: Path) -> None:
    brain = ScriptedBrain(BRAIN.answers)
    resets: list[int] = []
    suite = load_suite(
        write(
            tmp_path,
            """
conversations:
  - name: one
    turns: [{user: "show me tents"}, {user: "show me tents"}]
  - name: two
    turns: [{user: "show me tents"}]
""",
        )
    )
    run_suite(suite, brain, before_each=lambda: resets.append(1))
    assert brain.sessions[0] is brain.sessions[1]
    assert brain.sessions[2] is not brain.sessions[0]
    assert len(resets) == 2


def test_the_store_is_relative_to_the_file(tmp_path: Path) -> None:
    suite = load_suite(
        write(tmp_path, "store: ../pack\nconversations:\n  - {name: a, turns: [{user: hi}]}\n")
    )
    assert suite.store == (tmp_path.parent / "pack").resolve()


ONE_TURN = "conversations:\n  - name: a\n    turns:\n      - user: hi\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conversations: [\n", "suite.yaml: line"),
        ("today: 2025-03-10\n", "key 'conversations': must be a non-empty list"),
        ("conversations:\n  - name: a\n", "conversation 'a': key 'turns': must be a non-empty"),
        (
            ONE_TURN + "        expect: {contain: [x]}\n",
            "conversation 'a', turn 1: key 'contain': unknown key",
        ),
        (
            ONE_TURN + "        expect: {products: some}\n",
            "conversation 'a', turn 1: key 'products': must be none, any",
        ),
        (
            ONE_TURN + "        expect: {handoff: maybe}\n",
            "key 'handoff': must be true or false",
        ),
        (
            "conversations:\n  - name: a\n    turns:\n      - {user: hi, payload: human}\n",
            "conversation 'a', turn 1: a turn needs exactly one of 'user' and 'payload'",
        ),
        ("today: March\nconversations:\n  - {name: a, turns: [{user: hi}]}\n", "key 'today'"),
    ],
)
def test_a_malformed_file_names_the_file_the_conversation_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConversationFileError) as err:
        load_suite(write(tmp_path, text))
    assert message in str(err.value)
    assert str(tmp_path / "suite.yaml") in str(err.value)
