"""``GET /admin``: the shop's numbers (``gateway.stats``, the same as ``omnigate stats``) as one
HTML page, with inline SVG charts of conversations and resolution rate per day: nothing
loaded from elsewhere (no CDN, no script).

Who may see it (``may_see``): an agent signed in to the agents' console (``/agent/login``,
the same session cookie), or a client that sends the API token (``OMNIGATE_API_TOKEN``) as
HTTP Basic credentials (any user name, the token as password; ``allowed``), e.g. a script.
Without a token the page is open where the gateway itself may run without one (listening on
127.0.0.1 only, see ``Settings.check_exposure``), as ``POST /api/chat`` is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from html import escape
from typing import Any

import redis
from aiohttp import web

from gateway.agents.accounts import signed_in
from gateway.context import GATEWAY
from gateway.redis_clients import sync_client
from gateway.settings import Settings
from gateway.stats import BadPeriod, parse_since, shop_numbers

ADMIN = web.AppKey("admin", redis.Redis)
SETTINGS = web.AppKey("admin_settings", Settings)
REALM = 'Basic realm="omnigate admin", charset="UTF-8"'


def setup(app: web.Application, settings: Settings) -> None:
    """Mount ``GET /admin``."""
    app[ADMIN] = sync_client(settings.redis_url)
    app[SETTINGS] = settings
    app.router.add_get("/admin", admin)


async def may_see(request: web.Request, settings: Settings) -> bool:
    """Whether this request may see the shop's numbers: a signed-in agent, or ``allowed``."""
    if await signed_in(request, request.app[GATEWAY].redis) is not None:
        return True
    return allowed(request, settings)


def allowed(request: web.Request, settings: Settings) -> bool:
    """Whether this request carries the API token as Basic credentials (or none is set)."""
    token = settings.api_token
    if not token:
        return True
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password.encode(), token.encode())


async def admin(request: web.Request) -> web.Response:
    """The page; ``?since=30d`` picks the period (default 7 days)."""
    settings = request.app[SETTINGS]
    if not await may_see(request, settings):
        return web.Response(
            status=401,
            text="sign in at /agent/login (or send the API token) to see the shop's numbers",
            headers={"WWW-Authenticate": REALM},
        )
    since = request.query.get("since", "7d")
    try:
        period = parse_since(since)
    except BadPeriod as exc:
        return web.Response(status=400, text=str(exc))
    # The records are read and the questions embedded off the event loop.
    figures = await asyncio.to_thread(shop_numbers, request.app[ADMIN], settings, period)
    return web.Response(text=page(figures, since), content_type="text/html")


# --- the page -------------------------------------------------------------------------------


def page(f: dict[str, Any], since: str) -> str:
    """The figures as a whole HTML page."""
    rows = [
        ("Conversations", str(f["conversations"])),
        ("Per channel", ", ".join(f"{k}: {v}" for k, v in f["per_channel"].items()) or "-"),
        (
            "Resolved without a human",
            f"{_pct(f['resolution_rate'])} ({f['resolved']} resolved, {f['pending']} pending)",
        ),
        ("Handoffs", f"{f['handoffs']} ({_pct(f['handoff_rate'])})"),
        ("Handoff reasons", ", ".join(f"{k}: {v}" for k, v in f["handoff_reasons"].items()) or "-"),
        ("Bot: median first reply", _secs(f["bot"]["median_first_reply_s"])),
        ("Bot: median handling time", _secs(f["bot"]["median_handling_s"])),
        ("Agents: median first reply", _secs(f["agents"]["median_first_reply_s"])),
        ("Agents: median handling time", _secs(f["agents"]["median_handling_s"])),
        ("CSAT", f"{_pct(f['csat'])} ({f['csat_answers']} answers, {f['csat_asked']} asked)"),
        ("Top intents", ", ".join(f"{k}: {v}" for k, v in f["top_intents"].items()) or "-"),
        (
            "Recommendation clicks",
            ", ".join(f"{k}: {v}" for k, v in f["recommendation_clicks"].items()) or "-",
        ),
        ("LLM tokens", f"{f['llm_tokens']} ({f['llm_tokens_per_conversation']} per conversation)"),
        ("Estimated cost per conversation", str(f["estimated_cost_per_conversation"])),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    questions = "".join(
        f"<tr><td>{g['count']}</td><td>{escape(g['question'])}</td>"
        f"<td>{escape('; '.join(g['examples']))}</td></tr>"
        for g in f["unanswered"]
    )
    days = f["per_day"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>omnigate: the shop's numbers</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ text-align: left; padding: .3rem .8rem; border-bottom: 1px solid #ddd; }}
svg text {{ font-size: 11px; }}
</style></head><body>
<h1>The shop's numbers</h1>
<p>Since {escape(f["since"][:16])} UTC (<code>?since={escape(since)}</code>).</p>
<table>{table}</table>
<h2>Conversations per day</h2>
{_bars(days, "conversations", "#4a7bd0", lambda v: str(int(v)))}
<h2>Resolution rate per day</h2>
{_bars(days, "resolution_rate", "#3a9a5b", _pct)}
<h2>Questions the bot could not answer</h2>
<table><tr><th>Times</th><th>Question</th><th>Also asked as</th></tr>{questions}</table>
</body></html>"""


def _bars(days: list[dict[str, Any]], field: str, colour: str, label: Any) -> str:
    """An inline SVG bar chart of one field per day."""
    if not days:
        return "<p>No conversations in this period.</p>"
    width, height, gap = 640, 160, 4
    bar = max(4, (width - gap * len(days)) // len(days))
    top = max((d[field] or 0) for d in days) or 1
    parts = []
    for i, d in enumerate(days):
        value = d[field] or 0
        h = round(value / top * (height - 30))
        x = i * (bar + gap)
        parts.append(
            f'<rect x="{x}" y="{height - 15 - h}" width="{bar}" height="{h}" fill="{colour}">'
            f"<title>{escape(d['day'])}: {escape(label(d[field]) if d[field] is not None else '-')}"
            f"</title></rect>"
            f'<text x="{x}" y="{height - 2}">{escape(d["day"][5:])}</text>'
            f'<text x="{x}" y="{height - 18 - h}">'
            f"{escape(label(d[field]) if d[field] is not None else '-')}</text>"
        )
    w = len(days) * (bar + gap)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" role="img" '
        f'aria-label="{escape(field)} per day">{"".join(parts)}</svg>'
    )


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"
