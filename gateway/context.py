"""What the routes of one gateway process share."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiohttp import web
from celery import Celery

from channels.base import ChannelHost
from gateway.delivery import Delivery
from gateway.ingress import Ingress
from gateway.live import Live
from gateway.settings import Settings


@dataclass
class Gateway:
    """What every route and adapter of one gateway process shares; ``host`` is the part a
    channel gets (``channels.base.ChannelHost``), its ``adapters`` the ones delivery sends
    through."""

    settings: Settings
    redis: aioredis.Redis
    celery: Celery
    ingress: Ingress
    live: Live
    host: ChannelHost = field(init=False)
    delivery: Delivery | None = None

    def __post_init__(self) -> None:
        self.host = ChannelHost(redis=self.redis, ingress=self.ingress, live=self.live)


GATEWAY = web.AppKey("gateway", Gateway)
