"""What a worker process shares between its tasks, as arq's ``ctx``: the settings, one Redis
client and the brain (and through it every model). Built once per process — by the start-up
hook of ``workers.tasks``, or by the first task — and never at import or per task."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass

import redis

from brain.config import limit_cpu_threads
from brain.types import Brain
from gateway.redis_clients import sync_client
from gateway.settings import ConfigError, Settings, get_settings
from workers.metrics import model_loaded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerContext:
    """The shared resources of one worker process."""

    settings: Settings
    redis: redis.Redis
    brain: Brain


_lock = threading.Lock()
_current: WorkerContext | None = None


def worker_context() -> WorkerContext:
    """This process's context, built on first use from the process-wide settings
    (thread-safe: the threads pool shares one)."""
    global _current
    with _lock:
        if _current is None:
            _current = _build(get_settings())
        return _current


def forget_context() -> None:
    """Drop the context inherited from a parent process: a forked child must not share the
    parent's Redis connection."""
    global _current
    with _lock:
        _current = None


def _build(settings: Settings) -> WorkerContext:
    limit_cpu_threads(settings.torch_threads)
    started = time.monotonic()
    brain = import_brain_factory(settings.brain)(settings.brain_config())
    seconds = time.monotonic() - started
    log.info("brain %s loaded in %.1fs", settings.brain, seconds)
    r = sync_client(settings.redis_url)
    try:
        model_loaded(r, seconds)
    except redis.RedisError:
        log.warning("could not report the model load time: Redis unreachable")
    return WorkerContext(settings=settings, redis=r, brain=brain)


def import_brain_factory(spec: str) -> type:
    """``module:attr`` → the brain class (or factory) it names."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"OMNIGATE_BRAIN must look like 'module:Class', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"OMNIGATE_BRAIN={spec!r} cannot be imported: {exc}") from exc
    return factory
