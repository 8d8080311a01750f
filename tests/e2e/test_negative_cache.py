"""Negative caching of missing tags through a live Dockyard in front of the real
reference registry (issue 9 point 7): a CI loop asking for a tag that does not exist
costs the upstream one request a minute, per group; never across groups."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import push_small_image
from tests.support.reference_registry import RegistryPusher

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "negative-cache-metrics-token"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    env = {"DOCKYARD_METRICS_TOKEN": METRICS_TOKEN, "DOCKYARD_NEGATIVE_CACHE_SECONDS": "600"}
    workdir = tmp_path_factory.mktemp("negative")
    with DockyardServer(workdir, reference_registry_session.url, env=env) as dockyard:
        yield dockyard


def manifest(server: DockyardServer, account: Account, image: str, tag: str) -> httpx.Response:
    token = server.registry_token(account, image)
    return httpx.get(
        f"{server.url}/v2/{account.group}/dependency_proxy/containers/{image}/manifests/{tag}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def negative_hits(server: DockyardServer) -> float:
    text = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ).text
    match = re.search(r"^dockyard_negative_cache_hits_total (\S+)$", text, re.MULTILINE)
    assert match is not None, text
    return float(match.group(1))


def upstream_asked(registry: SeededReferenceRegistry, repository: str, tag: str) -> int:
    return registry.manifest_requests(tag, name=repository)


def test_a_missing_tag_is_asked_upstream_once_then_answered_from_memory(
    server: DockyardServer, reference_registry: SeededReferenceRegistry
) -> None:
    account = server.provision("ci-loop", "ci-loop")
    hits = negative_hits(server)
    first = manifest(server, account, "alpine", "not-yet")
    assert first.status_code == 404
    assert first.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    asked = upstream_asked(reference_registry, "library/alpine", "not-yet")
    assert asked >= 1
    for _ in range(5):
        again = manifest(server, account, "alpine", "not-yet")
        assert again.status_code == 404
        assert again.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert "said so less than 600 s ago" in again.json()["errors"][0]["message"]
    assert upstream_asked(reference_registry, "library/alpine", "not-yet") == asked
    assert negative_hits(server) == hits + 5
    # Other tags of the image are not affected.
    assert manifest(server, account, "alpine", "3.19").status_code == 200


def test_one_groups_404_never_hides_the_tag_from_another_group_and_a_clear_forgets_it(
    server: DockyardServer, reference_registry: SeededReferenceRegistry
) -> None:
    early = server.provision("early", "early-group")
    assert manifest(server, early, "later", "1.0").status_code == 404  # not pushed yet
    with RegistryPusher(reference_registry.url, "pusher", "pusher-secret") as pusher:
        image = push_small_image(pusher, "library/later", "1.0", seed=700)

    late = server.provision("late", "late-group")
    found = manifest(server, late, "later", "1.0")
    assert found.status_code == 200 and found.content == image.manifest

    # The first group still has the upstream's recent "no" (until it expires or
    # its cache is cleared), and the upstream is not asked for it.
    reference_registry.reset_counts()
    assert manifest(server, early, "later", "1.0").status_code == 404
    assert upstream_asked(reference_registry, "library/later", "1.0") == 0

    server.cli("cache", "clear", early.group)
    cleared = manifest(server, early, "later", "1.0")
    assert cleared.status_code == 200 and cleared.content == image.manifest
    assert upstream_asked(reference_registry, "library/later", "1.0") >= 1


@pytest.fixture
def without_negative_cache(
    tmp_path: Path, reference_registry: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    env = {"DOCKYARD_NEGATIVE_CACHE_SECONDS": "0"}
    with DockyardServer(tmp_path / "off", reference_registry.url, env=env) as dockyard:
        yield dockyard


def test_zero_seconds_turns_it_off(
    without_negative_cache: DockyardServer, reference_registry: SeededReferenceRegistry
) -> None:
    account = without_negative_cache.provision("always-asks", "always-asks")
    for _ in range(3):
        assert manifest(without_negative_cache, account, "alpine", "missing").status_code == 404
    answered = [
        e
        for e in reference_registry.access_log()
        if e.path == "/v2/library/alpine/manifests/missing" and e.status == 404
    ]
    assert len(answered) == 3
