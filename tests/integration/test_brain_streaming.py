"""The shop brain's rewording, streamed: the real brain (intents, flows, facts, grounding, the
dialogue's own checks) with its LLM replaced by a scripted one, the one double, since a real
model cannot be made to invent on demand. What the turn's delta sink hears is what the
customer sees (the worker writes it to the reply stream; tests/integration/test_streaming.py
and tests/e2e/test_streaming.py follow it to the widget, Telegram and Slack)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from brain.generation_grounded import delta_sink
from brain.shop import ShopBrain
from brain.types import Session, Turn
from channels.schema import Inbound, Reply, User
from tests.integration.test_brain import _config

INVENTED = "1Z999AA10123456784"


class ScriptedLlm:
    """Streams the given pieces whatever it is asked, and records whether it was closed."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.closed = False

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        try:
            yield from self.pieces
        finally:
            self.closed = True


@pytest.fixture(scope="module")
def brain() -> ShopBrain:
    return ShopBrain(_config("off"))


def _turn(brain: ShopBrain, llm: ScriptedLlm, text: str) -> tuple[list[str], Reply]:
    """One turn with ``llm`` as the brain's model: (what streamed, the reply)."""
    brain.dialogue.llm = llm
    shown: list[str] = []
    token = delta_sink.set(shown.append)
    try:
        message = Inbound(
            channel="web", platform_id="p", user=User(id="u"), conversation="c", text=text
        )
        [reply] = brain.respond(Turn(message=message, session=Session()))
    finally:
        delta_sink.reset(token)
        brain.dialogue.llm = None
    return shown, reply


def test_an_invented_tracking_number_is_never_streamed_and_the_grounded_text_replaces_it(
    brain: ShopBrain,
) -> None:
    llm = ScriptedLlm(
        ["Hello", ", welcome to Kestrel", " Outfitters! ", "Your tracking number is ",
         INVENTED[:8], INVENTED[8:], ". ", "How can I help?"]
    )  # fmt: skip
    shown, reply = _turn(brain, llm, "hello")
    assert shown == ["Hello,", " welcome to Kestrel Outfitters!"]
    assert INVENTED not in "".join(shown) and INVENTED not in reply.text
    assert reply.text.startswith("Hello, welcome to Kestrel Outfitters! I can track your order")
    assert llm.closed  # the model stopped at the failing clause


def test_a_rewording_that_passes_streams_then_is_the_reply(brain: ShopBrain) -> None:
    llm = ScriptedLlm(["Hi there", ", welcome to Kestrel Outfitters! ", "How can I help you?"])
    shown, reply = _turn(brain, llm, "hello")
    assert shown == ["Hi there,", " welcome to Kestrel Outfitters!", " How can I help you?"]
    assert reply.text == "".join(shown)
    assert reply.buttons  # the menu stays with the reworded text
