"""`docker login` and `docker pull` through a live Dockyard with the real Docker engine
(Debian's docker.io), from the real reference registry, with a personal access token
and a deploy token: what docker prints when things go right and when they go wrong
(a refused group, a missing image, a pull after `docker logout`), and what the server
log says meanwhile.

The engine is the session's (`dockerd` in conftest.py); each test's client has
its own config folder, so credentials never carry over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dockerd import DockerClient, Dockerd
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e

TLS_PROBE = "tried TLS on this plain-HTTP port and was answered 400: docker does this"


@pytest.fixture(scope="module")
def server(
    dockerd: Dockerd,
    tmp_path_factory: pytest.TempPathFactory,
    reference_registry_session: SeededReferenceRegistry,
) -> Iterator[DockyardServer]:
    """A Dockyard logging at info level, as `make run` does."""
    live = DockyardServer(
        tmp_path_factory.mktemp("dockyard"),
        reference_registry_session.url,
        env={"DOCKYARD_LOG_LEVEL": "info"},
    )
    with live:
        yield live


@pytest.fixture(scope="module")
def alice(server: DockyardServer) -> Account:
    account = server.provision("alice", "acme/platform", scopes="read_registry,write_registry")
    server.cli("group", "create", "beta")  # exists; alice is no member
    return account


@pytest.fixture
def docker(
    dockerd: Dockerd, tmp_path: Path, server: DockyardServer, alice: Account
) -> DockerClient:
    client = dockerd.client(tmp_path / "docker-config")
    login = client.login(server.host, alice.username, alice.token)
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout
    return client


def ours(docker: DockerClient, prefix: str, reference: str) -> list[str]:
    """The image's `RepoDigests` through this Dockyard: the session's engine may hold the
    same image (same ID) pulled through another test's Dockyard too."""
    return [
        digest
        for digest in docker.repo_digests(f"{prefix}/{reference}")
        if digest.startswith(f"{prefix}/")
    ]


def test_login_and_pull_by_tag_and_digest_without_log_noise(
    server: DockyardServer, alice: Account, docker: DockerClient, seeded_images: SeededImages
) -> None:
    alpine, busybox = seeded_images.alpine, seeded_images.busybox
    prefix = server.prefix(alice.group)
    for reference in (f"{prefix}/alpine:3.19", f"{prefix}/busybox:1.36"):
        pulled = docker.pull(reference)
        assert pulled.returncode == 0, pulled.stderr
    assert ours(docker, prefix, "alpine:3.19") == [f"{prefix}/alpine@{alpine.digest}"]
    # A multi-platform index stays one: docker records the index and picks its platform.
    assert ours(docker, prefix, "busybox:1.36") == [f"{prefix}/busybox@{busybox.digest}"]
    docker.remove_image(f"{prefix}/alpine:3.19")
    by_digest = docker.pull(f"{prefix}/alpine@{alpine.digest}")
    assert by_digest.returncode == 0, by_digest.stderr

    # docker probed HTTPS first each time: explained once, never uvicorn's warning.
    log = server.log_path.read_text()
    assert log.count(TLS_PROBE) == 1, log
    assert "Invalid HTTP request received" not in log


@pytest.mark.parametrize("group", ["acme/platfrom", "beta"], ids=["mistyped", "not-a-member"])
def test_a_group_one_cannot_pull_from_is_named_and_the_log_says_why(
    server: DockyardServer, docker: DockerClient, group: str
) -> None:
    repository = f"{server.prefix(group)}/alpine"
    refused = docker.pull(f"{repository}:3.19")
    assert refused.returncode != 0
    # The same words whether the group is missing or closed: nothing leaks.
    assert refused.stderr.strip() == (
        f"Error response from daemon: repository {repository} not found: name unknown: "
        f"no group '{group}' you can pull from: check the path (pulling needs at least "
        "the Guest role in the group)"
    )
    reason = "no such group" if group == "acme/platfrom" else "no pull access to it"
    log = server.log_path.read_text()
    assert f"pull refused for personal access token 'alice': group '{group}': {reason}" in log


def test_an_image_the_upstream_refuses_may_be_missing_or_need_credentials(
    server: DockyardServer,
    alice: Account,
    docker: DockerClient,
    reference_registry_session: SeededReferenceRegistry,
) -> None:
    # The reference registry answers 401 to anonymous pulls under private/, present
    # or not, as Docker Hub answers 401 for a repository that does not exist.
    repository = f"{server.prefix(alice.group)}/private/nothing-here"
    refused = docker.pull(f"{repository}:1")
    assert refused.returncode != 0
    assert refused.stderr.strip() == (
        f"Error response from daemon: pull access denied for {repository}, repository does "
        "not exist or may require 'docker login': denied: private/nothing-here does not "
        f"exist upstream ({reference_registry_session.host}), or needs upstream credentials: "
        "an Owner can set them in the group's Dependency Proxy settings"
    )


def test_a_deploy_token_logs_in_and_pulls_and_after_logout_the_pull_is_refused(
    dockerd: Dockerd,
    tmp_path: Path,
    server: DockyardServer,
    alice: Account,
    seeded_images: SeededImages,
) -> None:
    # A deploy token of the parent group pulls in its subgroup, as GitLab's do.
    created = server.cli(
        "deploy-token",
        "create",
        "acme",
        "--name",
        "docker-ci",
        "--scopes",
        "read_registry,write_registry",
    )
    client = dockerd.client(tmp_path / "deploy-config")
    login = client.login(server.host, created["username"], created["token"])
    assert login.returncode == 0, login.stderr
    prefix = server.prefix(alice.group)
    reference = f"{prefix}/alpine:3.19"
    pulled = client.pull(reference)
    assert pulled.returncode == 0, pulled.stderr
    assert ours(client, prefix, "alpine:3.19") == [f"{prefix}/alpine@{seeded_images.alpine.digest}"]
    client.remove_image(reference)

    assert client.logout(server.host).returncode == 0
    refused = client.pull(reference)
    assert refused.returncode != 0
    # docker shows the registry's own words: log in again.
    assert "unauthorized: authentication required: use docker login" in refused.stderr
    assert client.run("image", "inspect", reference).returncode != 0  # nothing pulled
