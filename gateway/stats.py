"""The shop's numbers, from the conversation records (``gateway.records``): computed once here
for ``omnigate stats`` and ``/admin``.

Definitions (the README's "The shop's numbers" says the same):

- a **conversation** runs from a customer's message to its end (``gateway.records``);
- **resolved without a human**: no person was asked for (no handoff), and the customer answered
  "Yes" to the satisfaction question, or did not come back (no new conversation on the same
  key) within 24 h of its last message and did not answer "No". A conversation younger than
  24 h with neither answer nor return is *pending*: counted in ``conversations``, not in the
  rate, whose denominator is the decided ones;
- **time to first reply**: from the customer's first message to the bot's reply written for
  delivery; the agents' is from the handoff to the agent's first reply; **handling time** is the
  length of a conversation without a handoff, first message to last (bot), and from the
  handoff to its resolution by an agent (agents);
- **CSAT**: the share of "Yes" among the satisfaction answers;
- **unanswered**: the customers' words of turns the bot could not answer (out of scope,
  clarification, handoff after failures), grouped by meaning with the sentence embedder.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import redis

from gateway import records
from gateway.records import ConversationRecord
from gateway.settings import Settings

COME_BACK = timedelta(hours=24)
# Cosine similarity at or above which two questions are "the same question".
SAME_QUESTION = 0.6
TOP = 10

Embed = Callable[[list[str]], np.ndarray]


class BadPeriod(ValueError):
    """A ``--since`` that is not a number and a unit."""


def parse_since(text: str) -> timedelta:
    """``7d``, ``24h``, ``30m``, ``2w`` → the period."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not m:
        raise BadPeriod(f"--since {text!r}: give a number and a unit, e.g. 7d, 24h, 30m or 2w")
    n, unit = int(m.group(1)), m.group(2)
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}.get(
        unit, timedelta(weeks=n)
    )


def shop_numbers(r: redis.Redis, settings: Settings, period: timedelta) -> dict[str, Any]:
    """The figures of the last ``period``, read from Redis; the unanswered questions are
    grouped with the sentence embedder (loaded offline, only when there are some)."""
    now = datetime.now(UTC)
    convs = records.load_since(r, now - period)
    return compute(
        convs,
        now=now,
        since=now - period,
        price_per_1k=settings.llm_price_per_1k_tokens,
        embed=_embedder(settings.device) if _unanswered(convs) else None,
    )


def _embedder(device: str) -> Embed:
    from brain.embeddings import get_embedder  # torch: loaded only when questions need it

    return get_embedder("cpu" if device == "auto" else device).encode


def as_text(f: dict[str, Any]) -> str:
    """The figures as a terminal report."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.0%}"

    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    lines = [
        f"Conversations since {f['since'][:16]}: {f['conversations']} "
        + (
            f"({', '.join(f'{k} {v}' for k, v in f['per_channel'].items())})"
            if f["per_channel"]
            else ""
        ),
        f"Resolved without a human: {pct(f['resolution_rate'])} "
        f"({f['resolved']} of {f['conversations'] - f['pending']} decided, {f['pending']} pending)",
        f"Handoffs: {f['handoffs']} ({pct(f['handoff_rate'])})"
        + "".join(f"; {k}: {v}" for k, v in f["handoff_reasons"].items()),
        f"Bot: first reply {secs(f['bot']['median_first_reply_s'])} (median), "
        f"handling {secs(f['bot']['median_handling_s'])}",
        f"Agents: first reply {secs(f['agents']['median_first_reply_s'])}, "
        f"handling {secs(f['agents']['median_handling_s'])}, "
        f"{f['agents']['timed_out']} timed out",
        f"CSAT: {pct(f['csat'])} ({f['csat_answers']} answers of {f['csat_asked']} asked)",
        "Top intents: " + (", ".join(f"{k} {v}" for k, v in f["top_intents"].items()) or "-"),
        "Recommendation clicks: "
        + (", ".join(f"{k} {v}" for k, v in f["recommendation_clicks"].items()) or "-"),
        f"LLM tokens: {f['llm_tokens']} ({f['llm_tokens_per_conversation']} per conversation, "
        f"estimated cost {f['estimated_cost_per_conversation']} per conversation)",
        "Questions the bot could not answer:" if f["unanswered"] else "Unanswered questions: none",
    ]
    for g in f["unanswered"]:
        also = f"  (also: {'; '.join(g['examples'])})" if g["examples"] else ""
        lines.append(f"  {g['count']:>4}  {g['question']}{also}")
    return "\n".join(lines)


def compute(
    convs: Sequence[ConversationRecord],
    *,
    now: datetime,
    since: datetime,
    price_per_1k: float,
    embed: Embed | None,
) -> dict[str, Any]:
    """Every figure of the period, as one JSON-ready object. ``embed`` groups the unanswered
    questions by meaning (None: by their exact words)."""
    returned = _came_back(convs)
    outcomes = [_outcome(c, now, c.id in returned) for c in convs]
    decided = [o for o in outcomes if o is not None]
    handed = [c for c in convs if c.handoffs]
    answers = [c.satisfied for c in convs if c.satisfied is not None]
    tokens = sum(t.tokens for c in convs for t in c.turns)
    return {
        "since": since.isoformat(),
        "until": now.isoformat(),
        "conversations": len(convs),
        "per_channel": dict(Counter(c.channel for c in convs).most_common()),
        "resolved": sum(decided),
        "pending": len(outcomes) - len(decided),
        "resolution_rate": _ratio(sum(decided), len(decided)),
        "handoffs": len(handed),
        "handoff_rate": _ratio(len(handed), len(convs)),
        "handoff_reasons": _reasons(convs),
        "bot": {
            "median_first_reply_s": _median(_first_replies(convs)),
            "median_handling_s": _median(
                [(c.last_at - c.started_at).total_seconds() for c in convs if not c.handoffs]
            ),
        },
        "agents": _agents(convs),
        "csat": _ratio(sum(answers), len(answers)),
        "csat_answers": len(answers),
        "csat_asked": sum(1 for c in convs if c.asked_at is not None),
        "top_intents": dict(
            Counter(t.intent for c in convs for t in c.turns if t.intent).most_common(TOP)
        ),
        "unanswered": group_questions(_unanswered(convs), embed),
        "recommendation_clicks": dict(
            Counter(t.click for c in convs for t in c.turns if t.click).most_common()
        ),
        "llm_tokens": tokens,
        "llm_tokens_per_conversation": round(tokens / len(convs), 1) if convs else 0.0,
        "estimated_cost_per_conversation": (
            round(tokens / 1000 * price_per_1k / len(convs), 6) if convs else 0.0
        ),
        "per_day": _per_day(convs, outcomes),
    }


def group_questions(questions: list[str], embed: Embed | None) -> list[dict[str, Any]]:
    """The questions grouped by meaning, biggest group first: each group's most central
    question, its size and up to three other wordings. A question joins the first group whose
    centroid is at least ``SAME_QUESTION`` similar (threshold grouping, in order), else
    starts one."""
    if not questions:
        return []
    if embed is None:
        counts = Counter(q.strip().lower() for q in questions)
        return [{"question": q, "count": n, "examples": []} for q, n in counts.most_common()]
    vectors = embed(questions)
    groups: list[list[int]] = []
    centroids: list[np.ndarray] = []
    for i, v in enumerate(vectors):
        scores = [float(c @ v) / (float(np.linalg.norm(c)) or 1.0) for c in centroids]
        best = int(np.argmax(scores)) if scores else -1
        if best >= 0 and scores[best] >= SAME_QUESTION:
            groups[best].append(i)
            centroids[best] = vectors[groups[best]].mean(axis=0)
        else:
            groups.append([i])
            centroids.append(v.copy())
    out = []
    for members, centroid in zip(groups, centroids, strict=True):
        central = max(members, key=lambda i: float(vectors[i] @ centroid))
        others = list(dict.fromkeys(questions[i] for i in members if i != central))
        out.append({"question": questions[central], "count": len(members), "examples": others[:3]})
    return sorted(out, key=lambda g: -int(g["count"]))


# --- the parts ------------------------------------------------------------------------------


def _came_back(convs: Sequence[ConversationRecord]) -> set[str]:
    """Conversations whose customer started another on the same key within 24 h."""
    by_key: dict[str, list[ConversationRecord]] = {}
    for c in convs:
        by_key.setdefault(c.conv, []).append(c)
    back = set()
    for same in by_key.values():
        same.sort(key=lambda c: c.started_at)
        for first, then in itertools.pairwise(same):
            if then.started_at - first.last_at <= COME_BACK:
                back.add(first.id)
    return back


def _outcome(c: ConversationRecord, now: datetime, came_back: bool) -> bool | None:
    """Resolved without a human (True), not (False), or not known yet (None)."""
    if c.handoffs or c.satisfied is False or came_back:
        return False
    if c.satisfied or now - c.last_at >= COME_BACK:
        return True
    return None


def _first_replies(convs: Sequence[ConversationRecord]) -> list[float]:
    out = []
    for c in convs:
        first = next((t for t in c.turns if t.replied_at is not None), None)
        if first is not None and first.replied_at is not None:
            out.append((first.replied_at - first.at).total_seconds())
    return out


def _agents(convs: Sequence[ConversationRecord]) -> dict[str, Any]:
    handoffs = [h for c in convs for h in c.handoffs]
    first = [(h.accepted_at - h.requested_at).total_seconds() for h in handoffs if h.accepted_at]
    handling = [
        (h.resolved_at - h.requested_at).total_seconds()
        for h in handoffs
        if h.resolved_at and h.agent
    ]
    return {
        "median_first_reply_s": _median(first),
        "median_handling_s": _median(handling),
        "answered": len(first),
        "timed_out": sum(1 for h in handoffs if h.timed_out_at),
    }


def _reasons(convs: Sequence[ConversationRecord]) -> dict[str, int]:
    kinds = Counter(
        "after the bot failed" if h.after_failures else "asked for a person"
        for c in convs
        for h in c.handoffs
    )
    return dict(kinds.most_common())


def _unanswered(convs: Sequence[ConversationRecord]) -> list[str]:
    return [t.question for c in convs for t in c.turns if t.unanswered and t.question]


def _per_day(
    convs: Sequence[ConversationRecord], outcomes: list[bool | None]
) -> list[dict[str, Any]]:
    days: dict[str, list[bool | None]] = {}
    for c, outcome in zip(convs, outcomes, strict=True):
        days.setdefault(c.started_at.date().isoformat(), []).append(outcome)
    out = []
    for day in sorted(days):
        decided = [o for o in days[day] if o is not None]
        out.append(
            {
                "day": day,
                "conversations": len(days[day]),
                "resolution_rate": _ratio(sum(decided), len(decided)),
            }
        )
    return out


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
