"""The streaming contract's pure parts: the web frames (a reply that did not stream keeps its
frame as before), and which committed reply names the preview it replaces."""

from __future__ import annotations

import redis

from channels.schema import Inbound, Outbound, Reply, User
from channels.web.adapter import WebAdapter
from channels.web.render import delta_frame, reply_frame
from workers.outgoing import Previews

USER = User(id="u")


def _inbound() -> Inbound:
    return Inbound(channel="web", platform_id="p", user=USER, conversation="s1", text="hi")


def test_a_delta_frame_is_text_to_append_to_a_reply() -> None:
    assert delta_frame("r1", " More.") == {"type": "delta", "reply_id": "r1", "text": " More."}


def test_a_reply_frame_names_its_preview_only_when_it_streamed() -> None:
    reply = Reply(text="Hello.")
    assert reply_frame(3, reply) == {
        "type": "reply",
        "seq": 3,
        "reply": reply.model_dump(mode="json"),
    }
    assert reply_frame(3, reply, "r1")["reply_id"] == "r1"
    out = Outbound(
        channel="web", conversation="s1", user=USER, replies=(reply, Reply(text="Rate us?")),
        first_seq=5, streamed="r1",
    )  # fmt: skip
    adapter = WebAdapter(redis.asyncio.Redis(), live=None, log_ttl_s=60)  # type: ignore[arg-type]
    [first] = adapter.render(out, 0).parts
    [second] = adapter.render(out, 1).parts
    assert first["reply_id"] == "r1" and first["seq"] == 5
    assert "reply_id" not in second  # only the streamed reply replaces the preview


def test_the_customers_reply_names_the_preview_once_something_streamed() -> None:
    inbound = _inbound()
    previews = Previews(redis.Redis(), inbound, "m1-1")
    to_customer = Outbound(
        channel="web", conversation="s1", user=USER, replies=(Reply(text="Hi!"),)
    )
    elsewhere = Outbound(
        channel="slack", conversation="CAGENTS", user=USER, replies=(Reply(text="handoff"),)
    )
    assert previews.mark([elsewhere, to_customer]) == [elsewhere, to_customer]  # none yet
    previews.shown = True
    marked = previews.mark([elsewhere, to_customer])
    assert marked[0].streamed is None and marked[1].streamed == "m1-1"
    previews.close()
    previews("late text")  # an abandoned generation writes nothing more (no Redis needed)
    assert previews.so_far == ""
