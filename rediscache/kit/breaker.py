"""``CircuitBreaker``: stop paying a timeout on every call while the cache server is down.

States::

    closed ──(N consecutive connection failures)──▶ open ──(reset_timeout elapsed)──▶ half_open
      ▲                                               ▲                                   │
      └──────────────(the probe succeeds)─────────────┼───────────────────────────────────┤
                                                      └──────────(the probe fails)────────┘

While open, ``allow()`` says no and the caller skips the server entirely (a fast miss). Once the
cool-down has passed, exactly one call is let through as a probe; every other call is still refused
until the probe has a verdict. A call that ends without a verdict (cancelled, or failed for a reason
that says nothing about the server, like a value that cannot be serialized) gives the probe back
with ``release()``.

The breaker is not thread-safe: like the rest of the kit it lives on one event loop, and none of its
methods await, so each is atomic for coroutines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

logger = logging.getLogger("rediscache.kit")

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts consecutive connection failures and opens after ``failure_threshold`` of them.

    Args:
        failure_threshold: consecutive failures that open the circuit (at least 1).
        reset_timeout: how long the circuit stays open before one probe call is let through.
        clock: monotonic seconds; tests pass a fake one to move time without sleeping.
        name: used in log messages (the service passes its adapter's description).
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: timedelta = timedelta(seconds=5),
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "cache",
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")
        if not isinstance(reset_timeout, timedelta) or reset_timeout <= timedelta(0):
            raise ValueError(f"reset_timeout must be a positive timedelta, got {reset_timeout!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._times_opened = 0

    @property
    def state(self) -> BreakerState:
        """``"open"`` turns into ``"half_open"`` as soon as the cool-down has passed (a probe may go)."""
        if self._state == "open" and self._cooled_down():
            return "half_open"
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def times_opened(self) -> int:
        """How many times the circuit has opened since the breaker was made (for monitoring)."""
        return self._times_opened

    def allow(self) -> bool:
        """Whether a call may go to the server now. In half-open state, ``True`` only for the single probe."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if not self._cooled_down():
                return False
            self._state = "half_open"
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        """The server answered: close the circuit and forget earlier failures."""
        if self._state != "closed":
            logger.info("rediscache: %s answers again; circuit closed", self.name)
        self._state = "closed"
        self._failures = 0
        self._probing = False

    def record_failure(self) -> None:
        """The server could not be reached: count it, and open the circuit at the threshold or on a failed probe."""
        self._failures += 1
        if self._state == "half_open" or (self._state == "closed" and self._failures >= self.failure_threshold):
            self._open()
        self._probing = False

    def release(self) -> None:
        """The call let through ended without telling whether the server is up: let another call probe."""
        self._probing = False

    def _open(self) -> None:
        if self._state == "closed":
            self._times_opened += 1
            logger.error(
                "rediscache: %s failed %d times in a row; circuit open, the cache is skipped for %.1f s",
                self.name,
                self._failures,
                self.reset_timeout.total_seconds(),
            )
        self._state = "open"
        self._opened_at = self._clock()

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_timeout.total_seconds()

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r}, failures={self._failures}, threshold={self.failure_threshold})"
