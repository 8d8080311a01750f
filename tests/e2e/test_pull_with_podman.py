"""`podman pull` pulls through a live Dockyard from the real reference registry.

Each pull goes into a podman storage of its own (vfs driver; its own
``--root``, ``--tmpdir``, configuration and auth file under the test's temp
folder, and a short ``--runroot`` under /tmp, removed afterwards), so blobs
always come over the wire from Dockyard and podman verifies every digest and,
unpacking the layers, every diff_id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import require
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import Image, SeededImages

pytestmark = pytest.mark.e2e


class Podman:
    """podman with a private storage, configuration and auth file under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require("podman")
        self.workdir = workdir
        for name in ("root", "tmp", "networks"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
        # podman refuses a runroot longer than 50 characters (conmon's socket
        # paths live under it), and pytest's temp folders are longer.
        self.runroot = Path(tempfile.mkdtemp(prefix="dockyard-podman-", dir="/tmp"))
        (workdir / "containers.conf").write_text("")
        (workdir / "registries.conf").write_text("")
        self.authfile = workdir / "auth.json"
        self.authfile.write_text('{"auths": {}}')  # podman wants it to exist
        self.env = {
            **os.environ,
            "TMPDIR": str(workdir / "tmp"),
            "CONTAINERS_CONF": str(workdir / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(workdir / "registries.conf"),
            "REGISTRY_AUTH_FILE": str(self.authfile),
        }

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                self.binary,
                "--root",
                str(self.workdir / "root"),
                "--runroot",
                str(self.runroot),
                "--tmpdir",
                str(self.workdir / "tmp"),
                "--network-config-dir",
                str(self.workdir / "networks"),
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
                *args,
            ],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stderr}"
        return result

    def pull(self, reference: str, *extra: str, creds: str | None = None) -> str:
        """Pull quietly; returns the image ID podman prints."""
        auth = ("--creds", creds) if creds else ()
        result = self("pull", "--quiet", "--tls-verify=false", *auth, *extra, reference)
        return result.stdout.strip().splitlines()[-1]

    def close(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)

    def inspect(self, reference: str) -> dict[str, Any]:
        document = json.loads(self("image", "inspect", reference).stdout)
        assert len(document) == 1
        return dict(document[0])


def hex_of(digest: str) -> str:
    return digest.split(":", 1)[1]


def assert_podman_holds(podman: Podman, reference: str, image: Image) -> dict[str, Any]:
    """The local image is the seeded one: config digest as ID, layers by diff_id."""
    inspected = podman.inspect(reference)
    assert inspected["Id"] == hex_of(image.config.digest)
    assert inspected["RootFS"]["Layers"] == [layer.diff_id for layer in image.layers]
    assert inspected["Architecture"] == image.platform.architecture
    assert inspected["Os"] == image.platform.os
    return inspected


@pytest.fixture(scope="module", autouse=True)
def podman_installed() -> None:
    """Skip before a Dockyard is started for nothing."""
    require("podman")


@pytest.fixture(scope="module")
def alice(dockyard: DockyardServer) -> Account:
    return dockyard.provision("alice", "acme/platform", scopes="read_registry,write_registry")


@pytest.fixture
def creds(alice: Account) -> str:
    return f"{alice.username}:{alice.token}"


NewPodman = Callable[[], Podman]


@pytest.fixture
def new_podman(tmp_path: Path) -> Iterator[NewPodman]:
    """A factory of podman instances, each with an empty storage."""
    require("podman")
    made: list[Podman] = []

    def make() -> Podman:
        made.append(Podman(tmp_path / f"podman-{len(made) + 1}"))
        return made[-1]

    try:
        yield make
    finally:
        for podman in made:
            podman.close()


def test_pull_by_tag_gives_the_seeded_manifest_and_config(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_podman: NewPodman,
) -> None:
    image = seeded_images.alpine
    podman = new_podman()
    reference = f"{dockyard.prefix(alice.group)}/alpine:3.19"
    assert podman.pull(reference, creds=creds) == hex_of(image.config.digest)
    inspected = assert_podman_holds(podman, reference, image)
    assert inspected["Digest"] == image.digest
    assert f"{dockyard.prefix(alice.group)}/alpine@{image.digest}" in inspected["RepoDigests"]
    assert reference in inspected["RepoTags"]


def test_pull_by_digest(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_podman: NewPodman,
) -> None:
    image = seeded_images.alpine
    podman = new_podman()
    reference = f"{dockyard.prefix(alice.group)}/alpine@{image.digest}"
    assert podman.pull(reference, creds=creds) == hex_of(image.config.digest)
    inspected = assert_podman_holds(podman, reference, image)
    assert inspected["Digest"] == image.digest
    assert reference in inspected["RepoDigests"]


def test_pull_one_platform_of_a_multi_arch_index(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_podman: NewPodman,
) -> None:
    index = seeded_images.busybox
    arm = index.for_platform("arm64")
    podman = new_podman()
    reference = f"{dockyard.prefix(alice.group)}/busybox:1.36"
    assert podman.pull(reference, "--arch", "arm64", creds=creds) == hex_of(arm.config.digest)
    inspected = assert_podman_holds(podman, reference, arm)
    repository = f"{dockyard.prefix(alice.group)}/busybox"
    # podman records both the index it resolved and the platform's manifest.
    assert f"{repository}@{index.digest}" in inspected["RepoDigests"]
    assert f"{repository}@{arm.digest}" in inspected["RepoDigests"]
    amd = index.for_platform("amd64")
    assert hex_of(amd.config.digest) not in podman("images", "--quiet", "--no-trunc").stdout


def test_second_pull_reaches_no_upstream_blob(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    new_podman: NewPodman,
) -> None:
    image = seeded_images.nginx  # Docker schema2; no other test here pulls it
    reference = f"{dockyard.prefix(alice.group)}/nginx:1.25"
    new_podman().pull(reference, creds=creds)
    assert reference_registry.blob_requests(method="GET") == len(image.blobs)

    reference_registry.reset_counts()
    podman = new_podman()  # an empty storage: every blob is fetched from Dockyard again
    assert podman.pull(reference, creds=creds) == hex_of(image.config.digest)
    assert_podman_holds(podman, reference, image)
    assert reference_registry.blob_requests(method="GET") == 0
    assert reference_registry.manifest_requests(method="GET") == 0


def test_login_with_a_deploy_token_then_pull(
    dockyard: DockyardServer, alice: Account, seeded_images: SeededImages, new_podman: NewPodman
) -> None:
    deploy = dockyard.cli(
        "deploy-token",
        "create",
        "acme",
        "--name",
        "podman",
        "--scopes",
        "read_registry,write_registry",
    )
    podman = new_podman()
    podman(
        "login",
        "--tls-verify=false",
        "--authfile",
        str(podman.authfile),
        "--username",
        deploy["username"],
        "--password-stdin",
        dockyard.host,
        stdin=deploy["token"],
    )
    assert dockyard.host in json.loads(podman.authfile.read_text())["auths"]
    reference = f"{dockyard.prefix(alice.group)}/alpine:3.19"
    podman.pull(reference, "--authfile", str(podman.authfile))
    assert_podman_holds(podman, reference, seeded_images.alpine)


def test_wrong_credentials_are_refused(
    dockyard: DockyardServer, alice: Account, new_podman: NewPodman
) -> None:
    podman = new_podman()
    refused = podman(
        "pull",
        "--quiet",
        "--tls-verify=false",
        "--creds",
        f"{alice.username}:not-the-token",
        f"{dockyard.prefix(alice.group)}/alpine:3.19",
        check=False,
    )
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower() or "401" in refused.stderr
    assert podman("images", "--quiet").stdout.strip() == ""


def test_a_mistyped_group_is_named_in_podmans_error(
    dockyard: DockyardServer, alice: Account, creds: str, new_podman: NewPodman
) -> None:
    podman = new_podman()
    reference = f"{dockyard.prefix('acme/platfrom')}/alpine:3.19"
    refused = podman("pull", "--tls-verify=false", "--creds", creds, reference, check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip().endswith(
        "name unknown: no group 'acme/platfrom' you can pull from: check the path "
        "(pulling needs at least the Guest role in the group)"
    ), refused.stderr
