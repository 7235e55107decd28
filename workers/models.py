"""The brain (and through it every model) is loaded once per worker process."""

from __future__ import annotations

import importlib
import logging
import threading
import time

from brain.types import Brain
from gateway.settings import ConfigError, Settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_brain: Brain | None = None


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


def get_brain(settings: Settings) -> Brain:
    """The process's brain, built on first use (thread-safe)."""
    global _brain
    with _lock:
        if _brain is None:
            started = time.monotonic()
            _brain = import_brain_factory(settings.brain)(settings.brain_config())
            log.info("brain %s loaded in %.1fs", settings.brain, time.monotonic() - started)
        return _brain
