"""Every Redis client of omnigate is made here, with the same timeouts and keepalive, so that
no call blocks forever on a Redis that stopped answering or a connection that silently died.

The gateway's blocking reads ask Redis for less than ``SOCKET_TIMEOUT_S`` (``XREADGROUP``
blocks 1 s); Pub/Sub's ``listen()`` waits without a socket timeout by design and relies on
TCP keepalive and the periodic health-check PING instead.
"""

from __future__ import annotations

import socket
from typing import Any

import redis
import redis.asyncio as aioredis

SOCKET_TIMEOUT_S = 5.0  # the longest wait for one reply
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_S = 10  # a connection idle this long is PINGed before use
# A gateway's connections to Redis; a call beyond them waits (up to SOCKET_TIMEOUT_S) for one
# to come free instead of failing: a burst of new chat sessions is queued, not refused.
GATEWAY_CONNECTIONS = 256
# Probe an idle connection after 30 s, every 10 s, 3 times: a dead peer is noticed in ~1 min.
KEEPALIVE = {
    opt: value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if (opt := getattr(socket, name, None)) is not None
}


def client_options() -> dict[str, Any]:
    """The connection options every client gets."""
    return {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "socket_keepalive_options": KEEPALIVE,
        "health_check_interval": HEALTH_CHECK_S,
    }


def sync_client(url: str) -> redis.Redis:
    """A blocking client (workers, the CLI)."""
    return redis.Redis.from_url(url, **client_options())


def async_client(url: str) -> aioredis.Redis:
    """An asyncio client (the gateway), whose calls wait for a free connection."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=GATEWAY_CONNECTIONS, timeout=SOCKET_TIMEOUT_S, **client_options()
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


def celery_transport_options() -> dict[str, Any]:
    """The same options for Celery's broker connection (kombu's Redis transport), whose
    socket timeout stays well above kombu's own blocking pop (1 s)."""
    return {
        "socket_timeout": 2 * SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_S,
    }
