"""Every log line of a task carries its conversation: bound when a task starts, forgotten when
it ends (pool threads and processes run many conversations' tasks one after another). The turn
id is bound by the turn itself once it knows which message it answers."""

from __future__ import annotations

from typing import Any

from celery import signals

from channels.log_ids import bind, unbind


@signals.task_prerun.connect
def _bind_conversation(args: Any = None, **_: object) -> None:
    # Every omnigate task takes the conversation key first.
    if args and isinstance(args[0], str):
        bind(conversation=args[0])


@signals.task_postrun.connect
def _unbind(**_: object) -> None:
    unbind()
