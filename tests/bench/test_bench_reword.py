"""How often grounding accepts SmolLM2's rewordings of policy answers
(``OMNIGATE_LLM_REWORD=all``), beside the same figure for small talk (the default mode's only
rewordings), measured in the same run on the demo shop.

A rewording counts as accepted when the reply the customer gets is the model's text rather
than the grounded one. The questions are the customer's own words, one per policy topic; the
conversations run at once, so the generation service batches them.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_reword.py``); one JSON line.
"""

from __future__ import annotations

import json
import threading

import pytest

from brain.llm import LocalLlm
from brain.shop import ShopBrain
from brain.types import Session, Turn
from channels.schema import Inbound, User
from gateway.settings import load_settings

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

POLICY = [
    "how do I create an account?",
    "I forgot my password",
    "can I delete my account?",
    "how do I get an invoice?",
    "can I change my order after placing it?",
    "is there a fee for cancelling?",
    "which payment methods do you take?",
    "when will my card be charged?",
    "how long do refunds take?",
    "how many days do I have to return something?",
    "how do I send an item back?",
    "can I exchange shoes for another size?",
    "what delivery options are there?",
    "how long does delivery take?",
    "do you ship to Norway?",
    "my parcel arrived damaged, what now?",
    "how long is the warranty?",
    "how do I make a warranty claim?",
]
SMALL_TALK = ["hi", "hello there", "thanks!", "thank you so much", "bye", "good morning"]


def _say(brain: ShopBrain, text: str) -> str:
    msg = Inbound(channel="api", platform_id="b", user=User(id="b"), conversation="b", text=text)
    return brain.respond(Turn(message=msg, session=Session()))[0].text


def _accepted(brain: ShopBrain, drafts: ShopBrain, texts: list[str]) -> tuple[int, int]:
    """(rewordings kept, rewordings the LLM was asked for) over ``texts``, run at once."""
    assert isinstance(brain.llm, LocalLlm)
    asked_before = brain.llm.service.stats.requests
    replies: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda t=t: replies.__setitem__(t, _say(brain, t))) for t in texts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    asked = brain.llm.service.stats.requests - asked_before
    # A reply that is not the grounded draft is the model's own wording, kept by grounding.
    kept = sum(replies[t] != _say(drafts, t) for t in texts)
    return kept, asked


def test_bench_reword_acceptance() -> None:
    def brain(model: str, reword: str) -> ShopBrain:
        settings = load_settings(OMNIGATE_LLM_MODEL=model, OMNIGATE_LLM_REWORD=reword)
        return ShopBrain(settings.brain_config())

    drafts = brain("off", "all")
    on = brain("smollm2", "all")
    policy_kept, policy_asked = _accepted(on, drafts, POLICY)
    talk_kept, talk_asked = _accepted(on, drafts, SMALL_TALK)
    print(
        json.dumps(
            {
                "bench": "llm_reword_acceptance",
                "model": "smollm2",
                "policy": {"asked": policy_asked, "kept": policy_kept},
                "policy_rate": round(policy_kept / max(policy_asked, 1), 2),
                "small_talk": {"asked": talk_asked, "kept": talk_kept},
                "small_talk_rate": round(talk_kept / max(talk_asked, 1), 2),
            }
        )
    )
    assert policy_asked > 0  # the probe measured something
