"""The clients the benchmark drives: skopeo, curl, wrk, and an RSS sampler.

Each call is bounded in time (a subprocess timeout) and in count; all traffic
goes to 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

PULL_TIMEOUT = 300.0


def skopeo_copy(reference: str, target: Path, creds: str | None) -> float:
    """``skopeo copy docker://REFERENCE dir:TARGET``; returns the wall time in seconds."""
    auth = ["--src-creds", creds] if creds else ["--src-no-creds"]
    command = [
        "skopeo", "--command-timeout", f"{int(PULL_TIMEOUT)}s", "copy",
        "--src-tls-verify=false", "--preserve-digests", *auth,
        f"docker://{reference}", f"dir:{target}",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, timeout=PULL_TIMEOUT + 30, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"skopeo copy {reference} failed: {result.stderr.decode()[-2000:]}")
    return elapsed


def assert_pulled(target: Path, blobs: Sequence[tuple[str, int]]) -> None:
    """skopeo's ``dir:`` layout names blobs by hex digest; skopeo itself checks the digests."""
    for digest, size in blobs:
        path = target / digest.removeprefix("sha256:")
        if path.stat().st_size != size:
            raise AssertionError(f"{digest}: {path.stat().st_size} bytes, expected {size}")


def curl_download(url: str, headers: dict[str, str], timeout: float = 120.0) -> float:
    """GET ``url`` into /dev/null with curl; returns MB/s (10^6 bytes per second)."""
    command = ["curl", "-sS", "--fail", "--max-time", str(int(timeout)), "-o", "/dev/null"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-w", "%{size_download} %{time_total}", url]
    result = subprocess.run(command, capture_output=True, timeout=timeout + 10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"curl {url} failed: {result.stderr.decode()}")
    size, seconds = result.stdout.decode().split()
    return int(size) / float(seconds) / 1e6


@dataclass(frozen=True)
class RateResult:
    requests_per_second: float
    requests: int
    errors: int
    tool: str


_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in")
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def request_rate(
    url: str, headers: dict[str, str], *, seconds: int = 5, connections: int = 8
) -> RateResult:
    """Requests per second on one URL: ``wrk`` when installed, else a bounded httpx loop."""
    if shutil.which("wrk") is None:
        return _httpx_rate(url, headers, total=2000, connections=min(connections, 4))
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run(
        [*command, url], capture_output=True, timeout=seconds + 30, check=False, text=True
    )
    rate, total = _WRK_RATE.search(result.stdout), _WRK_TOTAL.search(result.stdout)
    if result.returncode != 0 or rate is None or total is None:
        raise RuntimeError(f"wrk failed: {result.stdout}{result.stderr}")
    errors = _WRK_ERRORS.search(result.stdout)
    return RateResult(float(rate[1]), int(total[1]), int(errors[1]) if errors else 0, "wrk")


def _httpx_rate(url: str, headers: dict[str, str], *, total: int, connections: int) -> RateResult:
    counts = [0] * connections
    errors = [0] * connections
    per_worker = total // connections

    def work(index: int) -> None:
        with httpx.Client(headers=headers, timeout=10.0) as client:
            for _ in range(per_worker):
                if client.get(url).status_code != 200:
                    errors[index] += 1
                counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    elapsed = time.perf_counter() - started
    return RateResult(sum(counts) / elapsed, sum(counts), sum(errors), "httpx")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc/<pid>/task/*/children."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples the summed VmRSS of a process tree every ``interval`` seconds, in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(status_kib(pid, "VmRSS") for pid in process_tree(self.pid))
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def high_water_kib(self) -> int:
        """The largest VmHWM of any process in the tree (the kernel's own peak)."""
        return max((status_kib(pid, "VmHWM") for pid in process_tree(self.pid)), default=0)


def stream_and_hash(
    url: str, headers: dict[str, str], clients: int, timeout: float = 600.0
) -> list[str]:
    """``clients`` concurrent ``curl URL | sha256sum``; returns each client's sha256 digest."""
    command = ["curl", "-sS", "--fail", "--max-time", str(int(timeout))]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    pipes: list[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]] = []
    for _ in range(clients):
        curl = subprocess.Popen([*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert curl.stdout is not None
        hasher = subprocess.Popen(["sha256sum"], stdin=curl.stdout, stdout=subprocess.PIPE)
        curl.stdout.close()  # sha256sum owns the read end now
        pipes.append((curl, hasher))
    digests = []
    for curl, hasher in pipes:
        out, _ = hasher.communicate(timeout=timeout + 30)
        curl.wait(timeout=30)
        error = curl.stderr.read().decode() if curl.stderr else ""
        digests.append("sha256:" + out.decode().split()[0] if curl.returncode == 0 else error)
    return digests
