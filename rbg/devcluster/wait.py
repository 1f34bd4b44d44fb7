"""Polling until a condition holds, failing with the last state that was observed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class WaitTimeout(AssertionError):
    """The condition did not hold in time; the message carries the last observed state."""


def wait_until(
    probe: Callable[[], tuple[bool, Any]],
    timeout: float = 60.0,
    what: str = "condition",
    interval: float = 0.25,
) -> Any:
    """Call `probe` until it returns (True, observed); return observed.

    On time-out raise WaitTimeout naming `what` and the last observed value (or the last exception the
    probe raised), so a failing test shows what it saw, not only that it waited.
    """
    deadline = time.monotonic() + timeout
    last: Any = "<never observed>"
    while True:
        try:
            done, last = probe()
        except Exception as exc:  # the probe's own failures are part of what was observed
            done, last = False, f"probe raised {type(exc).__name__}: {exc}"
        if done:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last observed: {last}")
        time.sleep(interval)
