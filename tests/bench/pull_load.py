"""Pulls that keep going while the benchmark loads pages, clears and cleans up:
each request's latency and status, read back for any window of time."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Sample:
    started: float
    seconds: float
    status: int  # 0: the request itself failed (connection, timeout)


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    failures: int

    def __str__(self) -> str:
        failed = f", {self.failures} failed" if self.failures else ""
        spread = f"max {self.max_ms:.0f}, n={self.count}{failed}"
        return f"{self.p50_ms:.0f} / {self.p99_ms:.0f} ms ({spread})"


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class PullLoop(threading.Thread):
    """GETs `url` every `interval` seconds (or as soon as the last one answered)."""

    def __init__(self, url: str, token: str, interval: float, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.url = url
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        }
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def hold(self) -> None:
        """Stop pulling for a while (the benchmark writes rows in bulk meanwhile)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop_event.is_set():
                if not self._running.wait(timeout=0.1):
                    continue
                started = time.monotonic()
                try:
                    status = client.get(self.url, headers=self.headers).status_code
                except httpx.HTTPError:
                    status = 0
                elapsed = time.monotonic() - started
                self.samples.append(Sample(started, elapsed, status))
                self._stop_event.wait(max(0.0, self.interval - elapsed))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)

    def window(self, start: float, end: float) -> Latency:
        chosen = [sample for sample in list(self.samples) if start <= sample.started < end]
        times = [sample.seconds * 1000 for sample in chosen]
        return Latency(
            count=len(chosen),
            p50_ms=statistics.median(times) if times else float("nan"),
            p99_ms=percentile(times, 0.99),
            max_ms=max(times, default=float("nan")),
            failures=sum(1 for sample in chosen if sample.status != 200),
        )
