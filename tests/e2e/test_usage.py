"""Usage over time for real: skopeo pulls through Dockyard from the reference registry
(a miss, then a hit), GraphQL shows them as pulls, hits, misses and bytes in the current
hour, the counts survive a restart (flushed at shutdown), and another group's owner
sees none of them (issue 13 point 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e

USAGE = """
query($path: ID!) {
  group(fullPath: $path) {
    dependencyProxyUsage(period: HOURLY) {
      bytesSaved dockerHubPullsSaved
      nodes { pulls hits misses bytesFromCache bytesFromUpstream upstreamRequests }
    }
  }
}
"""


def usage_of(server: DockyardServer, account: Account, path: str) -> dict[str, Any] | None:
    answer = httpx.post(
        f"{server.url}/api/graphql",
        json={"query": USAGE, "variables": {"path": path}},
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    group = answer.json()["data"]["group"]
    return None if group is None else group["dependencyProxyUsage"]


def totals(usage: dict[str, Any]) -> dict[str, int]:
    keys = ("pulls", "hits", "misses", "bytesFromCache", "bytesFromUpstream", "upstreamRequests")
    return {key: sum(int(node[key]) for node in usage["nodes"]) for key in keys}


def test_pulls_show_up_as_hits_misses_and_bytes(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    image = seeded_images.alpine
    image_bytes = image.size + sum(blob.size for blob in image.blobs)
    server = DockyardServer(tmp_path / "dockyard", reference_registry.url)
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    bob = server.provision("bob", "beta")
    with server:
        for attempt in ("first", "second"):
            target = tmp_path / attempt
            copy_to_dir(server, f"olga:{olga.token}", "acme", "alpine:3.19", target)
            assert_dir_holds(target, image)
        upstream_seen = reference_registry.manifest_requests(
            method=None
        ) + reference_registry.blob_requests(method=None)

        usage = usage_of(server, olga, "acme")
        assert usage is not None
        counted = totals(usage)
        assert {key: counted[key] for key in ("pulls", "hits", "misses")} == {
            "pulls": 2,
            "hits": 1,
            "misses": 1,
        }
        assert counted["bytesFromUpstream"] == image_bytes  # the first pull
        assert counted["bytesFromCache"] == image_bytes  # the second
        # Every registry request, plus the token dance with the token server.
        assert counted["upstreamRequests"] > upstream_seen >= 1 + len(image.blobs)
        assert (usage["bytesSaved"], usage["dockerHubPullsSaved"]) == (str(image_bytes), 1)

        assert usage_of(server, bob, "acme") is None  # another group's owner
        beta = usage_of(server, bob, "beta")
        assert beta is not None and totals(beta)["pulls"] == 0

        server.stop()  # the shutdown flushes what the periodic flush had not yet
        server.start()
        after_restart = usage_of(server, olga, "acme")
        assert after_restart is not None and totals(after_restart) == counted
