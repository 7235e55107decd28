"""A brain driven by the test's own words — a test double for the brain in pipeline and
channel tests, where what matters is what the pipeline does with a reply, not what the
shop's brain would say. Commands (the message text):

- ``echo: X``         → one reply "echo: X"
- ``sleep: S X``      → sleeps S seconds, then replies "X"
- ``buttons``         → a reply with two buttons (payloads "pay:yes", "pay:no")
- ``longbutton``      → a button whose payload is 200 characters long
- ``products``        → a reply with two product cards (titles may carry markup via ``products: T``)
- ``long: N``         → a reply of N characters
- ``two``             → two replies in one turn
- ``handoff``         → a reply with ``handoff: true``
- ``fail: X``         → raises, with X in the error (a brain bug that quotes the customer)
- ``verify: EMAIL``   → records EMAIL as the session's verified email (as the order gate does)
- ``clarify: X``      → the shop brain's clarifying question, with "Did you mean…?" buttons
  (``intent:track_order``, ``intent:get_refund``) and "Talk to a human"; taken as
  ``clarification``
- ``oos: X``          → "Sorry, I can only help with the shop", taken as ``out_of_scope``
- ``as: INTENT X``    → "taken as INTENT", taken as INTENT (``as: thanks …`` ends the
  conversation, as the shop brain's ``thanks`` does)
- ``crash``           → kills the process running the turn (SIGKILL): a poison message
- ``hang: S X``       → like ``sleep``, but in a loop that nothing interrupts (a stuck generation)
- ``stream: X``       → X is what the model "generates", word by word: each word goes through the
                        brain's real grounding gate (``brain.generation_grounded.release_checked``)
                        against the facts of order OG-10231 (``STREAM_FACTS``), as the dialogue's
                        rewording does; the reply is the released text, or the grounded text
                        (``STREAM_GROUNDED``) when a sentence failed. The model is the one double.
- ``streamcrash: X``  → like ``stream``, but the first take of the message kills its process
                        (SIGKILL) after the first sentence was released, mid-stream
- anything else       → "you said: <text>" (payloads answer "clicked: <payload>"; an
  ``intent:NAME`` payload is taken as NAME, as the shop brain takes it)
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from brain.config import BrainConfig
from brain.generation_grounded import release_checked
from brain.grounding import Facts, check
from brain.types import Turn
from channels.schema import Button, Product, Reply

STREAM_GROUNDED = "Order OG-10231 has shipped with DHL, tracking number JD01460894152528."
STREAM_FACTS = Facts(
    STREAM_GROUNDED + " It was placed on 2025-02-01 and shipped on 2025-02-03.",
    required=["OG-10231"],
)
STREAM_PAUSE_S = 0.05  # between words: a model takes its time


def scripted_model(text: str, die_at: int | None = None) -> Iterator[str]:
    """The words of ``text`` as a model would stream them (the one test double); with
    ``die_at``, the process is killed before that word."""
    for n, word in enumerate(text.split(" ")):
        time.sleep(STREAM_PAUSE_S)
        if n == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        yield word if n == 0 else " " + word


def _first_take(message_id: str) -> bool:
    """True the first time a process asks about ``message_id`` (a marker file: takes of one
    message may run in different processes)."""
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:16]
    marker = Path(tempfile.gettempdir()) / f"omnigate-streamcrash-{digest}"
    try:
        marker.touch(exist_ok=False)
        return True
    except FileExistsError:
        return False


class ScriptBrain:
    """Answers by the rules of the module docstring; counts turns in the session."""

    def __init__(self, config: BrainConfig) -> None:
        self.config = config

    def respond(self, turn: Turn) -> list[Reply]:
        msg = turn.message
        turn.session.slots["turns"] = int(turn.session.slots.get("turns", 0)) + 1
        if msg.payload and not msg.text.startswith(("echo:", "sleep:")):
            if msg.payload.startswith("intent:"):
                turn.session.last_intent = msg.payload.removeprefix("intent:")
            return [Reply(text=f"clicked: {msg.payload}")]
        text = msg.text.strip()
        cmd, _, rest = text.partition(":")
        rest = rest.strip()
        if cmd == "echo":
            return [Reply(text=f"echo: {rest}")]
        if cmd == "sleep":
            secs, _, said = rest.partition(" ")
            time.sleep(float(secs))
            return [Reply(text=said or "slept")]
        if cmd == "hang":
            secs, _, said = rest.partition(" ")
            deadline = time.monotonic() + float(secs)
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.05)
                except BaseException:  # a stuck C call ignores interruptions too
                    continue
            return [Reply(text=said or "hung")]
        if cmd == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if cmd == "buttons":
            return [
                Reply(
                    text="Pick one",
                    buttons=(
                        Button(title="Yes", payload="pay:yes"),
                        Button(title="No", payload="pay:no"),
                    ),
                )
            ]
        if cmd == "longbutton":
            return [Reply(text="Long", buttons=(Button(title="Long one", payload="L" * 200),))]
        if cmd == "products":
            title = rest or "Trail Runner 2"
            return [
                Reply(
                    text="Here you go",
                    products=(
                        Product(
                            sku="SKU-1",
                            title=title,
                            price=89.5,
                            currency="EUR",
                            url="https://shop.example/p/1",
                            image_url="https://shop.example/1.jpg",
                        ),
                        Product(
                            sku="SKU-2",
                            title="Road Racer",
                            price=120.0,
                            currency="EUR",
                            url="https://shop.example/p/2",
                            image_url=None,
                        ),
                    ),
                )
            ]
        if cmd == "long":
            n = int(rest)
            return [Reply(text=("word " * (n // 5 + 1))[:n])]
        if cmd == "two":
            return [Reply(text="first"), Reply(text="second")]
        if cmd == "verify":
            turn.session.slots["verified_email"] = rest
            return [Reply(text=f"verified {rest}")]
        if cmd == "fail":
            raise ValueError(f"the script cannot handle {rest!r}")
        if cmd == "clarify":
            turn.session.last_intent = "clarification"
            return [
                Reply(
                    text="Sorry, I'm not sure I understood. Could you say it in other words, "
                    "or pick one of these?",
                    buttons=(
                        Button(title="Track an order", payload="intent:track_order"),
                        Button(title="Get a refund", payload="intent:get_refund"),
                        Button(title="Talk to a human", payload="human"),
                    ),
                )
            ]
        if cmd == "oos":
            turn.session.last_intent = "out_of_scope"
            return [Reply(text="Sorry, I can only help with the shop.")]
        if cmd == "as":
            intent = rest.split(" ", 1)[0]
            turn.session.last_intent = intent
            return [Reply(text=f"taken as {intent}")]
        if cmd in ("stream", "streamcrash"):
            die_at = 6 if cmd == "streamcrash" and _first_take(msg.id) else None
            released = release_checked(scripted_model(rest, die_at), STREAM_FACTS)
            ok = released.ok and check(released.text, STREAM_FACTS).ok
            return [Reply(text=released.text if ok else STREAM_GROUNDED)]
        if cmd == "handoff":
            return [Reply(text="Connecting you with a human.", handoff=True)]
        return [Reply(text=f"you said: {text}")]
