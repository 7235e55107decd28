"""The aiohttp application factory: shared clients, JSON errors, health, and every channel's
routes (``gateway.mounts``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from celery import Celery

from channels.errors import TooMany, Unavailable
from channels.http import json_error
from gateway import admin, health, proxies
from gateway.agents import console as agents_console
from gateway.context import GATEWAY, Gateway
from gateway.delivery import Delivery
from gateway.ingress import Ingress
from gateway.live import Live
from gateway.mounts import mount_channels
from gateway.queue import make_celery
from gateway.redis_clients import async_client, sync_client
from gateway.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into JSON with the right status; never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[GATEWAY].settings.max_body_bytes
        return json_error(413, f"request body too large (limit {limit} bytes)")
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return json_error(exc.status, exc.reason)
    except Unavailable as exc:
        log.warning("503 on %s %s: %s", request.method, request.path, exc.detail)
        return json_error(503, str(exc))
    except TooMany as exc:
        resp = json_error(429, str(exc))
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error; the gateway log has the details")


def create_app(settings: Settings, celery: Celery | None = None) -> web.Application:
    """The gateway: ``/api/chat``, health, metrics, and the routes of each configured channel."""
    app = web.Application(
        middlewares=[errors_as_json, proxies.middleware(settings.proxy_networks)],
        client_max_size=settings.max_body_bytes,
    )
    if celery is None:
        celery = make_celery(settings)
    r = async_client(settings.redis_url)
    live = Live(r)
    gw = Gateway(
        settings=settings,
        redis=r,
        celery=celery,
        ingress=Ingress(sync_client(settings.redis_url), celery, settings),
        live=live,
    )
    app[GATEWAY] = gw
    health.setup(app)
    admin.setup(app, settings)
    mount_channels(app, gw.host, settings)
    agents_console.setup(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await live.start()
        gw.delivery = Delivery(r, gw.host.adapters, settings)
        await gw.delivery.start()
        yield
        await gw.delivery.close()
        await live.close()
        for adapter in gw.host.adapters.values():
            await adapter.close()
        gw.ingress.close()
        await r.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app
