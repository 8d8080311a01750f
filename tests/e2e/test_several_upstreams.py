"""A group with three real upstreams: each serves what only it holds, the first that
has an image wins and is remembered, a host-qualified name goes straight to its
upstream, a cold miss fails over, cached content survives its upstream, and groups
with other upstreams never reach those bytes.

Upstreams: the Docker-Hub-like reference registry (the instance's default,
token auth), Debian's ``docker-registry`` behind htpasswd Basic auth, and a
second token-auth registry on ``127.77.N.1:80`` (a host without a port, so it
can lead an image name). Pulls with skopeo, podman and ctr; raw HTTP where the
answer's code and headers are what is checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import require
from tests.e2e.test_pull_with_containerd import assert_content_holds
from tests.e2e.test_pull_with_podman import Podman, assert_podman_holds
from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir, skopeo
from tests.support.containerd import Containerd
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import Image, push_small_image
from tests.support.more_upstreams import (
    HTPASSWD_USER,
    AddressedReferenceRegistry,
    BasicPusher,
    HtpasswdRegistry,
    free_loopback_address,
)
from tests.support.reference_registry import RegistryProcess, RegistryPusher
from tests.support.token_server import PULL_USER, PUSH_USER, TokenServer

pytestmark = pytest.mark.e2e


class Htpasswd(HtpasswdRegistry):
    images: dict[str, Image]


class Tokened(AddressedReferenceRegistry):
    images: dict[str, Image]


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Htpasswd]:
    registry = Htpasswd(tmp_path_factory.mktemp("htpasswd-registry"))
    registry.start()
    try:
        with BasicPusher(registry.url, *HTPASSWD_USER) as pusher:
            registry.images = {
                "htonly": push_small_image(pusher, "tools/htonly", "1", seed=901),
                "both": push_small_image(pusher, "shared/both", "1", seed=902),
            }
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tokened]:
    if os.geteuid() != 0:
        pytest.skip("the token-auth upstream listens on port 80 of a loopback address")
    token_server = TokenServer(tmp_path_factory.mktemp("second-token-server"))
    token_server.start()
    registry = Tokened(
        tmp_path_factory.mktemp("token-registry"), token_server, free_loopback_address()
    )
    try:
        registry.start()
        with RegistryPusher(registry.url, *PUSH_USER) as pusher:
            registry.images = {
                "tokenonly": push_small_image(pusher, "team/tokenonly", "1", seed=903),
                "both": push_small_image(pusher, "shared/both", "1", seed=904),
            }
        yield registry
    finally:
        registry.stop()
        token_server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    with DockyardServer(
        tmp_path_factory.mktemp("several-upstreams"), reference_registry_session.url
    ) as dockyard:
        yield dockyard


def add_upstream(
    server: DockyardServer, group: str, url: str, name: str, credentials: tuple[str, str]
) -> None:
    server.cli(
        "upstream",
        "add",
        group,
        "--url",
        url,
        "--name",
        name,
        "--username",
        credentials[0],
        "--password-stdin",
        stdin=credentials[1] + "\n",
    )


@pytest.fixture(scope="module")
def ursula(server: DockyardServer, htpasswd_registry: Htpasswd, token_registry: Tokened) -> Account:
    """Owner of `multi`: Docker Hub (the default), then the htpasswd one, then the token one."""
    account = server.provision("ursula", "multi")
    add_upstream(server, "multi", htpasswd_registry.url, "private", HTPASSWD_USER)
    add_upstream(server, "multi", token_registry.url, "team", PULL_USER)
    names = [item["name"] for item in server.cli("upstream", "list", "multi")["upstreams"]]
    assert names == ["docker-hub", "private", "team"]
    return account


@pytest.fixture
def counted(
    reference_registry: SeededReferenceRegistry,
    htpasswd_registry: Htpasswd,
    token_registry: Tokened,
) -> Iterator[tuple[SeededReferenceRegistry, Htpasswd, Tokened]]:
    """All three running, their request counters reset."""
    for registry in (htpasswd_registry, token_registry):
        registry.start()
        registry.reset_counts()
    yield reference_registry, htpasswd_registry, token_registry
    for registry in (htpasswd_registry, token_registry):
        registry.start()  # a test may have stopped it


def creds(account: Account) -> str:
    return f"{account.username}:{account.token}"


def raw(server: DockyardServer, account: Account, image: str, what: str) -> httpx.Response:
    """GET /v2/<group>/dependency_proxy/containers/<image>/<what> with a registry JWT."""
    token = server.registry_token(account, image)
    return httpx.get(
        f"{server.url}/v2/{account.group}/dependency_proxy/containers/{image}/{what}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        },
        timeout=30,
    )


def statuses(registry: RegistryProcess, path: str, method: str | None = None) -> list[int]:
    """What the registry answered to `path` (a token dance's 401s included)."""
    return [
        entry.status
        for entry in registry.access_log()
        if entry.path == path and method in (None, entry.method)
    ]


def answered(registry: RegistryProcess, path: str, method: str) -> int:
    """How many `method` requests of `path` the registry answered 200."""
    return statuses(registry, path, method).count(200)


def blob_count(server: DockyardServer, account: Account) -> int:
    query = "query($p: ID!) { group(fullPath: $p) { dependencyProxyBlobCount } }"
    answer = httpx.post(
        f"{server.url}/api/graphql",
        json={"query": query, "variables": {"p": account.group}},
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=10,
    )
    return int(answer.json()["data"]["group"]["dependencyProxyBlobCount"])


def test_each_upstream_serves_what_only_it_holds_and_the_winner_is_remembered(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
    tmp_path: Path,
) -> None:
    hub, private, team = counted
    alpine = hub.seeded.alpine
    copy_to_dir(server, creds(ursula), "multi", "alpine:3.19", tmp_path / "hub")
    assert_dir_holds(tmp_path / "hub", alpine)
    # Docker Hub had it: the others were never asked.
    assert private.count() == 0 and team.count() == 0

    htonly = private.images["htonly"]
    copy_to_dir(server, creds(ursula), "multi", "tools/htonly:1", tmp_path / "ht")
    assert_dir_holds(tmp_path / "ht", htonly)
    # Docker Hub was asked first (after its token dance's 401) and did not have it.
    assert statuses(hub, "/v2/tools/htonly/manifests/1") == [401, 404]
    # Basic auth: the first request learns the challenge, every later one carries it.
    assert statuses(private, "/v2/tools/htonly/manifests/1") == [401, 200]
    assert private.blob_requests(method="GET") == len(htonly.blobs)
    assert team.count() == 0

    tokenonly = team.images["tokenonly"]
    copy_to_dir(server, creds(ursula), "multi", "team/tokenonly:1", tmp_path / "tok")
    assert_dir_holds(tmp_path / "tok", tokenonly)
    assert team.blob_requests(method="GET") == len(tokenonly.blobs)

    # Remembered: the next pull of each asks only its own upstream (one HEAD).
    for registry in (hub, private, team):
        registry.reset_counts()
    copy_to_dir(server, creds(ursula), "multi", "tools/htonly:1", tmp_path / "ht2")
    copy_to_dir(server, creds(ursula), "multi", "team/tokenonly:1", tmp_path / "tok2")
    assert_dir_holds(tmp_path / "tok2", tokenonly)
    assert hub.count() == 0
    assert statuses(private, "/v2/tools/htonly/manifests/1") == [200]  # one HEAD
    assert private.blob_requests(method=None) == 0
    assert answered(team, "/v2/team/tokenonly/manifests/1", "HEAD") == 1
    assert answered(team, "/v2/team/tokenonly/manifests/1", "GET") == 0
    assert team.blob_requests(method=None) == 0


def test_a_subgroup_inherits_the_list(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
    tmp_path: Path,
) -> None:
    server.cli("group", "create", "multi/sub")
    listing = server.cli("upstream", "list", "multi/sub")
    assert listing["inherited_from"] == "multi"
    copy_to_dir(server, creds(ursula), "multi/sub", "tools/htonly:1", tmp_path / "sub")
    assert_dir_holds(tmp_path / "sub", counted[1].images["htonly"])


def test_a_host_qualified_name_goes_straight_to_that_upstream(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
    tmp_path: Path,
) -> None:
    hub, private, team = counted
    image = team.images["both"]
    copy_to_dir(server, creds(ursula), "multi", f"{team.host}/shared/both:1", tmp_path / "q")
    # The token registry's shared/both, though the htpasswd one is asked first by order.
    assert_dir_holds(tmp_path / "q", image)
    assert hub.count() == 0 and private.count() == 0
    assert answered(team, "/v2/shared/both/manifests/1", "GET") == 1

    refused = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds(ursula),
        f"docker://{server.prefix('multi')}/ghcr.io/owner/tool:1",
        check=False,
    )
    assert refused.returncode != 0
    assert b"no upstream for ghcr.io" in refused.stderr
    answer = raw(server, ursula, "ghcr.io/owner/tool", "manifests/1")
    assert answer.status_code == 404
    error = answer.json()["errors"][0]
    assert error["code"] == "NAME_UNKNOWN" and "ghcr.io" in error["message"]


def test_a_cold_miss_fails_over_and_cached_content_outlives_its_upstream(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
    tmp_path: Path,
) -> None:
    hub, private, team = counted
    # Warm: tools/htonly comes from (and is remembered for) the htpasswd upstream.
    copy_to_dir(server, creds(ursula), "multi", "tools/htonly:1", tmp_path / "warm")
    private.stop()
    try:
        # Cold miss, first holder down: the next upstream that has it serves it.
        copy_to_dir(server, creds(ursula), "multi", "shared/both:1", tmp_path / "over")
        assert_dir_holds(tmp_path / "over", team.images["both"])
        assert answered(team, "/v2/shared/both/manifests/1", "GET") == 1
        # Cached, its upstream down: served stale, not looked for elsewhere.
        team.reset_counts()
        answer = raw(server, ursula, "tools/htonly", "manifests/1")
        assert answer.status_code == 200 and answer.headers["X-Cache"] == "STALE"
        assert answer.content == private.images["htonly"].manifest
        assert team.count() == 0
    finally:
        private.start()
    # shared/both is now remembered on the token registry: its revalidation goes there.
    private.reset_counts()
    team.reset_counts()
    copy_to_dir(server, creds(ursula), "multi", "shared/both:1", tmp_path / "again")
    assert_dir_holds(tmp_path / "again", team.images["both"])
    assert private.count() == 0
    assert answered(team, "/v2/shared/both/manifests/1", "HEAD") == 1
    assert answered(team, "/v2/shared/both/manifests/1", "GET") == 0


def test_groups_with_other_upstreams_never_reach_those_bytes(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
    tmp_path: Path,
) -> None:
    hub, private, team = counted
    htonly = private.images["htonly"]
    copy_to_dir(server, creds(ursula), "multi", "tools/htonly:1", tmp_path / "owner")
    layer = htonly.layers[1].digest  # its bytes are on Dockyard's disk now
    private.reset_counts()

    # A group with the default list (Docker Hub only) asks for them.
    plain = server.provision("piet", "plain")
    assert raw(server, plain, "tools/htonly", "manifests/1").json()["errors"][0]["code"] == (
        "MANIFEST_UNKNOWN"
    )
    blob = raw(server, plain, "tools/htonly", f"blobs/{layer}")
    assert blob.status_code == 404 and blob.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    qualified = raw(server, plain, f"{team.host}/team/tokenonly", "manifests/1")
    assert qualified.status_code == 404
    assert team.host in qualified.json()["errors"][0]["message"]
    assert blob_count(server, plain) == 0
    # Its checks went to its own upstream, never to the one that holds the image.
    assert private.count() == 0

    # A group that lists the same htpasswd registry with a wrong password.
    wrong = server.provision("wanda", "wrong")
    add_upstream(server, "wrong", private.url, "private", (HTPASSWD_USER[0], "not-the-secret"))
    private.reset_counts()
    refused = raw(server, wrong, "tools/htonly", f"blobs/{layer}")
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "DENIED"
    assert blob_count(server, wrong) == 0
    assert private.count(method="HEAD") >= 1  # asked, with its own (wrong) credentials
    assert not [entry for entry in private.access_log() if entry.status == 200]


def test_podman_and_ctr_pull_through_the_other_upstreams(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
    tmp_path: Path,
) -> None:
    _, private, team = counted
    podman = Podman(tmp_path / "podman")
    try:
        reference = f"{server.prefix('multi')}/{team.host}/team/tokenonly:1"
        podman.pull(reference, creds=creds(ursula))
        assert_podman_holds(podman, reference, team.images["tokenonly"])
    finally:
        podman.close()

    daemon = Containerd(tmp_path / "containerd", require("containerd"), require("ctr"))
    daemon.start()
    try:
        daemon.ctr(
            "images",
            "pull",
            "--plain-http",
            "--user",
            creds(ursula),
            "--snapshotter",
            "native",
            "--platform",
            "linux/amd64",
            f"{server.prefix('multi')}/tools/htonly:1",
        )
        assert_content_holds(daemon, private.images["htonly"])
    finally:
        daemon.stop()


def test_tag_lists_and_missing_tags_follow_the_images_upstream(
    server: DockyardServer,
    ursula: Account,
    counted: tuple[SeededReferenceRegistry, Htpasswd, Tokened],
) -> None:
    """tags/list (and the negative cache) ask the upstream that holds the image: by
    order (Docker Hub lacks it), and straight to the host of a host-qualified name."""
    hub, private, team = counted
    listing = raw(server, ursula, "tools/htonly", "tags/list")
    assert listing.status_code == 200, listing.text
    assert listing.json() == {
        "name": "multi/dependency_proxy/containers/tools/htonly",
        "tags": ["1"],
    }
    assert 200 in statuses(private, "/v2/tools/htonly/tags/list", "GET")
    assert team.count() == 0

    qualified = raw(server, ursula, f"{team.host}/team/tokenonly", "tags/list")
    assert qualified.status_code == 200 and qualified.json()["tags"] == ["1"]
    assert answered(team, "/v2/team/tokenonly/tags/list", "GET") == 1

    # A tag no upstream has: every upstream is asked once, then not again for a while.
    for registry in (hub, private, team):
        registry.reset_counts()
    for _ in range(3):
        missing = raw(server, ursula, "tools/htonly", "manifests/no-such-tag")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    path = "/v2/tools/htonly/manifests/no-such-tag"
    assert statuses(private, path).count(404) == 1
    assert statuses(team, path).count(404) == 1
