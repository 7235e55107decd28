"""The agent timeout of a handoff: a Celery task (``TASK_HANDOFF_TIMEOUT``, queue ``deliver``)
scheduled with a countdown when a handoff opens.

It does not touch the session itself: it queues a system message into the conversation's
inbox with the gateway's own enqueue step (``gateway.enqueue``), so the timeout is handled by
``workers.handoff.state.route`` in a turn, under the conversation lock, in order with the
customer's and agent's messages. The message's platform id names the handoff, so a second run
of the task (Redis redelivers a countdown task that outlives the broker's visibility timeout)
is dropped as a duplicate.
"""

from __future__ import annotations

import logging

from channels import constants as K
from gateway.enqueue import enqueue
from workers.celery_app import app
from workers.context import worker_context
from workers.handoff.state import timeout_inbound

log = logging.getLogger(__name__)


def schedule(conv: str, handoff_id: str, countdown_s: int) -> None:
    """Run ``handoff_timeout(conv, handoff_id)`` in ``countdown_s`` seconds."""
    app.send_task(
        K.TASK_HANDOFF_TIMEOUT,
        args=[conv, handoff_id],
        countdown=countdown_s,
        queue=K.QUEUE_DELIVER,
    )


@app.task(name=K.TASK_HANDOFF_TIMEOUT, acks_late=True)
def handoff_timeout(conv: str, handoff_id: str) -> bool:
    """Queue the timeout notice of handoff ``handoff_id`` into ``conv``'s inbox. True when
    queued, False when this timeout was queued before."""
    ctx = worker_context()
    notice = timeout_inbound(conv, handoff_id)
    if not enqueue(ctx.redis, app, notice, ctx.settings, limits=False):
        return False
    log.info("agent timeout of %s (handoff %s) queued", conv, handoff_id)
    return True
