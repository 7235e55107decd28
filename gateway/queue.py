"""The Celery configuration shared by the gateway (which sends turns) and the workers (which
run them): Redis broker, the ``brain`` and ``deliver`` queues, and the settings that make a turn
survive a killed worker (late acks, reject on worker loss, one prefetch)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from channels import constants as K
from gateway.redis_clients import celery_transport_options
from gateway.settings import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings`` (the gateway's, for sending tasks)."""
    return configure_celery(Celery("omnigate"), settings)


def configure_celery(app: Celery, settings: Settings) -> Celery:
    """Configure ``app`` from ``settings``: broker, queues, routes and time limits."""
    limit = settings.turn_time_limit_s
    app.conf.update(
        broker_url=settings.redis_url,
        task_default_queue=K.QUEUE_BRAIN,
        task_queues=(Queue(K.QUEUE_BRAIN), Queue(K.QUEUE_DELIVER)),
        task_routes={
            K.TASK_TURN: {"queue": K.QUEUE_BRAIN},
            K.TASK_HANDOFF_TIMEOUT: {"queue": K.QUEUE_DELIVER},
        },
        # A task is acknowledged only when it has finished, and handed back if its worker
        # dies, so a killed worker delays a turn and never drops it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        # The turn enforces its own time limit in every pool (workers.watchdog); this hard
        # limit of the prefork pool only backs it up, for a turn stuck outside the brain.
        task_time_limit=limit + settings.lock_ttl_s + 30,
        broker_transport_options={
            # Unacked tasks go back to the queue after this long: well above the longest turn.
            # Also above the agent timeout: that task waits in the queue with a countdown.
            "visibility_timeout": max(limit * 3, settings.agent_timeout_s + 60),
            "global_keyprefix": K.CELERY_KEY_PREFIX,
            **celery_transport_options(),
        },
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
    )
    return app
