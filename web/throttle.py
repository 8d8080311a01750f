"""Failed sign-in throttling, per account and per client address.

In memory, per process: enough for the embedded single-process default. With
several instances behind a load balancer each keeps its own counts, so the
effective limit is multiplied by the number of instances.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

ACCOUNT_LIMIT = 5  # failures per account within the window
ADDRESS_LIMIT = 20  # failures per client address within the window
WINDOW_SECONDS = 15 * 60
MAX_TRACKED = 100_000  # keys kept before the oldest are forgotten (memory bound)


class SignInThrottle:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._monotonic = monotonic

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        cutoff = self._monotonic() - WINDOW_SECONDS
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, account: str, address: str) -> int:
        """Seconds until another attempt is allowed (0: go ahead)."""
        waits = []
        for key, limit in (
            (f"account:{account.lower()}", ACCOUNT_LIMIT),
            (f"ip:{address}", ADDRESS_LIMIT),
        ):
            failures = self._recent(key)
            if len(failures) >= limit:
                waits.append(failures[0] + WINDOW_SECONDS - self._monotonic())
        return max(1, int(max(waits))) if waits else 0

    def record_failure(self, account: str, address: str) -> None:
        now = self._monotonic()
        if len(self._failures) >= MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))
        for key in (f"account:{account.lower()}", f"ip:{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def record_success(self, account: str) -> None:
        self._failures.pop(f"account:{account.lower()}", None)
