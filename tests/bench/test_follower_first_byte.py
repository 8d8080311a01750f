"""Time to first byte of a follower on another instance, for a cold layer.

Three instances on one PostgreSQL and one SeaweedFS bucket (the cluster of
tests/e2e/test_scale_out.py). A client asks instance 1 for a cold layer
(`DOCKYARD_E2E_SCALE_MIB`, 256 MiB by default) and so makes it the downloader;
as soon as its response has begun, a second client asks instance 2, which
relays instance 1's growing spool. Printed: each client's time to first byte
and to the last one, and how long the follower would have waited for its first
byte had it had to wait for the whole blob (the leader's total).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time

import httpx
import pytest

from tests.bench.report import REPORT, Row
from tests.e2e.test_scale_out import FAST, Cluster, cluster, layer_downloads  # noqa: F401
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import MiB, push_large_image
from tests.support.reference_registry import RegistryPusher

pytestmark = pytest.mark.e2e

# The size, whatever the e2e test's default (64 MiB there, to keep `make test` short).
SIZE = int(os.environ.get("DOCKYARD_E2E_SCALE_MIB", "256")) * MiB


class Timed:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.started = self.first = self.last = 0.0
        self.digest = ""
        self.begun = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        hasher = hashlib.sha256()
        self.started = time.perf_counter()
        with httpx.stream(
            "GET", self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(1 << 20):
                if not self.first:
                    self.first = time.perf_counter()
                    self.begun.set()
                hasher.update(chunk)
        self.last = time.perf_counter()
        self.digest = "sha256:" + hasher.hexdigest()


def test_a_follower_on_another_instance_gets_its_first_byte_long_before_the_whole_blob(
    cluster: Cluster,  # noqa: F811
    registry_pusher: RegistryPusher,
    reference_registry: SeededReferenceRegistry,
) -> None:
    cluster.proxy.bytes_per_second = FAST
    name = f"ttfb-{secrets.token_hex(3)}"
    image = push_large_image(registry_pusher, f"library/{name}", "1", size=SIZE, seed=99)
    layer = image.layers[0]
    reference_registry.reset_counts()
    first, second = cluster.instances[0], cluster.instances[1]
    path = f"/v2/{cluster.alice.group}/dependency_proxy/containers/{name}/blobs/{layer.digest}"
    leader = Timed(first.url + path, first.registry_token(cluster.alice, name))
    follower = Timed(second.url + path, second.registry_token(cluster.alice, name))

    leader.thread.start()
    assert leader.begun.wait(60)
    follower.thread.start()
    leader.thread.join(180)
    follower.thread.join(180)

    assert leader.digest == follower.digest == layer.digest
    assert layer_downloads(reference_registry, layer.digest) == 1
    leader_ttfb = leader.first - leader.started
    follower_ttfb = follower.first - follower.started
    leader_total = leader.last - leader.started
    follower_total = follower.last - follower.started
    whole_blob_wait = leader.last - follower.started  # a follower that waits for the blob
    note = (
        f"{layer.size / (1 << 20):.0f} MiB layer; leader (instance 1): first byte "
        f"{leader_ttfb * 1000:.0f} ms, whole blob {leader_total:.1f} s; follower "
        f"(instance 2, relaying): first byte {follower_ttfb * 1000:.0f} ms, whole blob "
        f"{follower_total:.1f} s; waiting for the whole blob would have taken "
        f"{whole_blob_wait:.1f} s"
    )
    print(note)
    REPORT.add(
        Row(
            "follower TTFB on another instance, cold layer",
            "s",
            follower_ttfb,
            direct=whole_blob_wait,
            note=note,
        )
    )
    assert follower_ttfb < whole_blob_wait
