"""Registry-mirror mode with real clients: dockerd's `registry-mirrors`, podman's
`registries.conf` mirror and containerd's `hosts.toml` pull plain Docker Hub names
(`alpine:3.19`, `private/secret:1.0`) through Dockyard, with the same credentials a
proxy pull needs.

The clients cannot reach Docker Hub here, so a pull that succeeds came through
Dockyard (whose mirror group's upstream is the local reference registry); each
test also counts what reached that registry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import require
from tests.e2e.test_pull_with_containerd import assert_content_holds
from tests.e2e.test_pull_with_podman import Podman, assert_podman_holds
from tests.support.containerd import Containerd
from tests.support.dockerd import Dockerd, dockerd_available
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.token_server import PULL_USER

pytestmark = pytest.mark.e2e

MIRROR_GROUP = "hub"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    with DockyardServer(
        tmp_path_factory.mktemp("mirror"),
        reference_registry_session.url,
        env={"DOCKYARD_MIRROR_GROUP": MIRROR_GROUP},
    ) as dockyard:
        yield dockyard


@pytest.fixture(scope="module")
def mira(server: DockyardServer) -> Account:
    """Owner of the mirror group, whose Docker Hub credentials may pull `private/`."""
    account = server.provision("mira", MIRROR_GROUP)
    query = """mutation($input: UpdateDependencyProxySettingsInput!) {
        updateDependencyProxySettings(input: $input) { errors } }"""
    identity, secret = PULL_USER
    answer = httpx.post(
        f"{server.url}/api/graphql",
        json={
            "query": query,
            "variables": {
                "input": {"groupPath": MIRROR_GROUP, "identity": identity, "secret": secret}
            },
        },
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=10,
    )
    assert answer.json()["data"]["updateDependencyProxySettings"]["errors"] == []
    return account


def auth_entry(account: Account) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{account.username}:{account.token}".encode()).decode()}


def image_count(server: DockyardServer, account: Account) -> int:
    query = "query($p: ID!) { group(fullPath: $p) { dependencyProxyImageCount } }"
    answer = httpx.post(
        f"{server.url}/api/graphql",
        json={"query": query, "variables": {"p": MIRROR_GROUP}},
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=10,
    )
    return int(answer.json()["data"]["group"]["dependencyProxyImageCount"])


def test_dockerd_with_registry_mirrors(
    server: DockyardServer,
    mira: Account,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    tmp_path: Path,
) -> None:
    reason = dockerd_available()
    if reason is not None:
        pytest.skip(reason)
    with Dockerd(tmp_path / "dockerd", registry_mirrors=(server.url,)) as daemon:
        # docker.io credentials in the client's config: dockerd hands them to the mirror.
        client = daemon.client(tmp_path / "docker-config")
        config = {"auths": {"https://index.docker.io/v1/": auth_entry(mira)}}
        (client.config_dir / "config.json").write_text(json.dumps(config))
        pulled = client.pull("alpine:3.19")
        assert pulled.returncode == 0, pulled.stderr
        digests = client.repo_digests("alpine:3.19")
        assert any(item.endswith(f"@{seeded_images.alpine.digest}") for item in digests)
        private = client.pull("private/secret:1.0")
        assert private.returncode == 0, private.stderr
        assert reference_registry.manifest_requests("1.0", method="GET", name="private/secret")

        # Without the credentials the mirror refuses and Docker Hub is out of reach.
        anonymous = daemon.client(tmp_path / "anonymous-config")
        refused = anonymous.pull("nginx:1.25")
        assert refused.returncode != 0
    assert image_count(server, mira) >= 2


def test_podman_with_a_registries_conf_mirror(
    server: DockyardServer, mira: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    podman = Podman(tmp_path / "podman")
    try:
        (podman.workdir / "registries.conf").write_text(
            "[[registry]]\n"
            'prefix = "docker.io"\n'
            'location = "docker.io"\n'
            "[[registry.mirror]]\n"
            f'location = "{server.host}"\n'
            "insecure = true\n"
        )
        podman.authfile.write_text(json.dumps({"auths": {server.host: auth_entry(mira)}}))
        podman("pull", "--quiet", "docker.io/library/nginx:1.25")
        assert_podman_holds(podman, "docker.io/library/nginx:1.25", seeded_images.nginx)
    finally:
        podman.close()


def test_containerd_with_a_hosts_dir(
    server: DockyardServer, mira: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    hosts = tmp_path / "certs.d"
    (hosts / "docker.io").mkdir(parents=True)
    (hosts / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n\n'
        f'[host."{server.url}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
    daemon = Containerd(tmp_path / "containerd", require("containerd"), require("ctr"))
    daemon.start()
    try:
        daemon.ctr(
            "images",
            "pull",
            "--hosts-dir",
            str(hosts),
            "--user",
            f"{mira.username}:{mira.token}",
            "--snapshotter",
            "native",
            "--platform",
            "linux/amd64",
            "docker.io/library/alpine:3.19",
        )
        assert_content_holds(daemon, seeded_images.alpine)
    finally:
        daemon.stop()
