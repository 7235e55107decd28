"""The gateway's named errors; each becomes a JSON ``{"error": ...}`` response."""

from __future__ import annotations

# What a customer (or a platform) is told while a service behind the gateway is down: never
# the service's own error text, which names hosts and ports.
TRY_AGAIN = "Sorry, we can't take messages right now. Please send yours again in a moment."


class Unavailable(Exception):
    """A service the gateway depends on (Redis, the broker) cannot be reached right now.
    Answered with 503, so the platform retries later and nothing is lost. ``str()`` is the
    plain ``public`` message; ``detail`` (the cause, for the log) is never shown."""

    def __init__(self, detail: str, public: str = TRY_AGAIN) -> None:
        super().__init__(public)
        self.detail = detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class TooMany(Exception):
    """An inbound limit was reached (messages a minute, messages waiting). Answered with 429
    and the message names the limit and when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
