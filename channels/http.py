"""The HTTP helpers of every route, the gateway's and the channels': one error shape,
``{"error": "..."}``, a request body read as a JSON object, and a channel's connection run
for the app's lifetime."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web


class Connected(Protocol):
    """A channel that holds a connection to its platform for the app's lifetime."""

    def start(self) -> None: ...

    async def close(self) -> None: ...


def run_with_app(app: web.Application, channel: Connected) -> None:
    """Start ``channel`` when ``app`` starts and close it when ``app`` stops."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        channel.start()
        yield
        await channel.close()  # idempotent: the gateway closes its adapters first

    app.cleanup_ctx.append(lifecycle)


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
