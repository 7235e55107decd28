"""The workers' Celery application. Its tasks bind to it on import; its configuration
(``gateway.queue.configure_celery``) is applied when a worker starts (``omnigate worker``), so
importing a worker module reads no settings."""

from __future__ import annotations

from celery import Celery

app = Celery(
    "omnigate", include=["workers.tasks", "workers.handoff.timeout", "workers.log_context"]
)
