"""The JSON helpers of every route, the gateway's and the channels': one error shape,
``{"error": "..."}``, and a request body read as a JSON object."""

from __future__ import annotations

import json

from aiohttp import web


def json_error(status: int, message: str, **extra: object) -> web.Response:
    """The one error shape of every route: ``{"error": "..."}``."""
    return web.json_response({"error": message, **extra}, status=status)


async def read_json(request: web.Request) -> dict[str, object]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body is not valid JSON"}), content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return body
