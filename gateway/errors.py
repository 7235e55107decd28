"""The gateway's named errors; each becomes a JSON ``{"error": ...}`` response."""

from __future__ import annotations


class Unavailable(Exception):
    """A service the gateway depends on (Redis, the broker) cannot be reached right now.
    Answered with 503, so the platform retries later and nothing is lost."""
