"""Peak memory of Dockyard while ten clients stream the same cold 1 GiB blob at once.

A fresh Dockyard (empty cache) gets ten concurrent ``curl | sha256sum``
clients for one layer it has never seen. Its memory is sampled (VmRSS of the
process and any children, every 20 ms) and read from the kernel's own peak
(VmHWM) afterwards. Correctness is asserted, the memory target is not: every
client gets the right sha256, and the upstream sees exactly one blob GET.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.bench.clients import RssSampler, stream_and_hash
from tests.bench.report import REPORT, Row, dockyard_below
from tests.bench.servers import BenchDockyard, DockyardTemplate
from tests.bench.workload import CLIENTS, push_huge_image
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.reference_registry import RegistryPusher
from tests.support.token_server import PUSH_USER

pytestmark = pytest.mark.e2e


def test_peak_memory_while_ten_clients_stream_a_cold_blob(
    dockyard_template: DockyardTemplate, upstream: SeededReferenceRegistry, tmp_path: Path
) -> None:
    with RegistryPusher(upstream.url, *PUSH_USER) as pusher:
        huge = push_huge_image(pusher)
    layer = huge.image.layers[0]
    dockyard = BenchDockyard(tmp_path / "dockyard", dockyard_template)
    with dockyard:
        url = dockyard.url_for(huge.repository, "blobs", layer.digest)
        headers = dockyard.auth_headers(huge.repository)
        upstream.reset_counts()
        idle_kib = RssSampler(dockyard.pid).high_water_kib()
        with RssSampler(dockyard.pid) as sampler:
            started = time.perf_counter()
            digests = stream_and_hash(url, headers, CLIENTS)
            elapsed = time.perf_counter() - started
        high_water_kib = sampler.high_water_kib()
    assert digests == [layer.digest] * CLIENTS, digests
    # A 401 before the token dance carries no bytes: count the GETs that did.
    blob_path = f"/v2/{huge.image.repository}/blobs/{layer.digest}"
    requests = [entry for entry in upstream.access_log() if entry.path == blob_path]
    upstream_gets = sum(1 for entry in requests if entry.method == "GET" and entry.status == 200)
    upstream_heads = sum(1 for entry in requests if entry.method == "HEAD")
    assert upstream_gets == 1
    note = (
        f"{CLIENTS} clients, all sha256 right, upstream blob GETs {upstream_gets} "
        f"(+{upstream_heads} HEADs), "
        f"{elapsed:.1f} s, VmHWM {high_water_kib * 1024 / 1e6:.0f} MB, "
        f"after start-up {idle_kib * 1024 / 1e6:.0f} MB"
    )
    REPORT.add(
        Row(
            f"peak RSS, cold {huge.label}",
            "MB",
            sampler.peak_kib * 1024 / 1e6,
            samples=1,
            target=dockyard_below(200, "MB"),
            note=note,
        )
    )
