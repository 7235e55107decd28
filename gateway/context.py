"""What the routes of one gateway process share, and the JSON helpers every route uses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from celery import Celery

from channels.base import ChannelAdapter
from channels.schema import ChannelName
from gateway.delivery import Delivery
from gateway.ingress import Ingress
from gateway.live import Live
from gateway.settings import Settings


@dataclass
class Gateway:
    """What every route and adapter of one gateway process shares."""

    settings: Settings
    redis: aioredis.Redis
    celery: Celery
    ingress: Ingress
    live: Live
    adapters: dict[ChannelName, ChannelAdapter[Any]] = field(default_factory=dict)
    delivery: Delivery | None = None


GATEWAY = web.AppKey("gateway", Gateway)


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
