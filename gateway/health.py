"""The operational routes: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from redis.exceptions import RedisError

from channels import constants as K
from gateway.context import GATEWAY
from gateway.metrics import SYSTEM

log = logging.getLogger(__name__)

WORKERS_ALIVE = Gauge(
    "omnigate_workers_alive", f"Worker processes with a heartbeat in the last {K.WORKER_ALIVE_S}s"
)


def setup(app: web.Application) -> None:
    """Mount the routes of this module."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers (always 200). The detail says how many workers sent a
    heartbeat lately (``null`` while Redis cannot tell)."""
    return web.json_response({"status": "ok", "workers": await _live_workers(request)})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: this gateway can accept work, i.e. Redis (inboxes, broker, reply stream)
    answers. Workers do not count: a message accepted while none runs waits in its inbox and
    is answered when one starts, so one busy or restarting GPU worker takes no gateway out."""
    try:
        await request.app[GATEWAY].redis.ping()
    except (RedisError, OSError):
        log.warning("readiness: Redis does not answer", exc_info=True)
        return web.json_response({"status": "unavailable", "redis": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "redis": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this gateway process, and the workers' and queues' (read from
    Redis, ``gateway.metrics``; the last snapshot stands while Redis does not answer)."""
    await _live_workers(request)  # refreshes the gauge
    try:
        await SYSTEM.refresh(request.app[GATEWAY].redis)
    except (RedisError, OSError):
        log.warning("metrics: Redis does not answer; the workers' counts are the last read")
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


async def _live_workers(request: web.Request) -> int | None:
    """Workers with a recent heartbeat (one ZCOUNT), also set as the ``omnigate_workers_alive``
    gauge; None when Redis does not answer."""
    try:
        alive = int(
            await request.app[GATEWAY].redis.zcount(
                K.WORKERS, time.time() - K.WORKER_ALIVE_S, "+inf"
            )
        )
    except (RedisError, OSError):
        return None
    WORKERS_ALIVE.set(alive)
    return alive
