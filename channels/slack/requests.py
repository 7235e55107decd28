"""What stands between a request to ``POST /slack/events`` and slack-bolt: bolt answers 500
to a validly signed body it cannot read (``[]``, a form whose payload is not an object, bytes
that are not UTF-8, an event whose fields have the wrong types), and a 500 tells Slack to retry
what will never work. Here such a body is a JSON 400 instead; a message that could not be
queued is a JSON 503 (Slack retries, nothing is lost); bolt's own 4xx answers become JSON.

The signature is checked first, as bolt would, so an unsigned body still gets 401 whatever it
holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels.errors import Unavailable
from channels.http import json_error

log = logging.getLogger(__name__)

MAX_AGE_S = 5 * 60  # Slack's replay window
OUTCOME = "omnigate_outcome"  # where a listener leaves what went wrong, in bolt's context
# What a listener raises on a payload of the wrong shape (bolt hands listeners raw dicts).
SHAPE_ERRORS = (ValidationError, TypeError, KeyError, AttributeError, ValueError, IndexError)


class MalformedRequest(Exception):
    """A validly signed body that is not a Slack payload we can read; ``str()`` says why."""


def signed(secret: str, headers: Any, body: bytes, now: float | None = None) -> bool:
    """Slack's v0 signature of ``body`` holds and is fresh."""
    stamp = str(headers.get("X-Slack-Request-Timestamp", ""))
    given = str(headers.get("X-Slack-Signature", ""))
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > MAX_AGE_S:
        return False
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.encode(), expected.encode())


def check_body(body: bytes, content_type: str) -> None:
    """Raise ``MalformedRequest`` unless ``body`` reads, the way bolt reads it, as an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("body is not UTF-8 text") from None
    if not text:
        raise MalformedRequest("body is empty")
    try:
        if content_type == "application/json" or text.startswith("{"):
            parsed: Any = json.loads(text)
        elif "payload" in text:
            parsed = json.loads(dict(parse_qsl(text, keep_blank_values=True)).get("payload", "{}"))
        else:
            parsed = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise MalformedRequest("body is neither a JSON object nor a Slack form") from None
    if not isinstance(parsed, dict):
        raise MalformedRequest("body must be a JSON object")


async def guarded(context: Any, work: Awaitable[None]) -> None:
    """Run a listener's ``work``; what goes wrong is left in ``context`` for the route."""
    try:
        await work
    except Unavailable as exc:
        context[OUTCOME] = exc
    except (RedisError, OSError) as exc:
        context[OUTCOME] = Unavailable(f"Redis: {exc}")
    except SHAPE_ERRORS as exc:
        log.warning("an unreadable Slack payload: %s", type(exc).__name__)
        context[OUTCOME] = MalformedRequest("a Slack payload with fields of the wrong shape")


def answer(context: Any, status: int, body: str) -> web.Response | None:
    """The route's JSON answer when a listener or bolt failed (None: bolt's answer stands)."""
    outcome = context.get(OUTCOME) if context is not None else None
    if isinstance(outcome, Unavailable):
        log.warning("a Slack event was not queued: %s", outcome.detail)
        return json_error(503, str(outcome))
    if isinstance(outcome, MalformedRequest):
        return json_error(400, str(outcome))
    if status >= 500:
        # bolt itself choked on the payload (its listeners are guarded).
        return json_error(400, "a Slack payload this gateway cannot read")
    if status >= 400:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        return json_error(status, str(error or body.strip() or "request not handled"))
    return None
