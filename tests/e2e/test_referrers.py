"""Referrers (OCI 1.1) and cosign-style tags through a live Dockyard in front of the real
reference registry (issue 9 point 6). distribution 2.8 has no referrers API, so this
is the tag-schema fallback: the index tagged `sha256-<hex>`, as cosign and oras push it.
The passthrough of a registry that has the API is covered in
tests/unit/dependency_proxy/test_referrers.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import require
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import OCI_INDEX, OCI_MANIFEST, Image, push_small_image
from tests.support.reference_registry import RegistryPusher
from tests.support.token_server import PUSH_USER

pytestmark = pytest.mark.e2e

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM_TYPE = "application/spdx+json"
REPOSITORY = "library/signed"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pushed:
    manifest: bytes
    digest: str


def push_artifact(
    pusher: RegistryPusher, subject: Image, artifact_type: str, payload: bytes, tag: str | None
) -> Pushed:
    """An OCI 1.1 artifact manifest whose `subject` is `subject`."""
    for blob in (b"{}", payload):
        pusher.push_blob(REPOSITORY, blob)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": digest_of(b"{}"), "size": 2},
        "layers": [
            {"mediaType": artifact_type, "digest": digest_of(payload), "size": len(payload)}
        ],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    }
    manifest = json.dumps(document, indent=2).encode()
    return Pushed(manifest, pusher.push_manifest(REPOSITORY, tag, manifest, OCI_MANIFEST))


@dataclass(frozen=True)
class Signed:
    image: Image
    signature: Pushed
    sbom: Pushed
    unsigned: Image


@pytest.fixture(scope="module")
def signed(reference_registry_session: SeededReferenceRegistry) -> Signed:
    with RegistryPusher(reference_registry_session.url, *PUSH_USER) as pusher:
        image = push_small_image(pusher, REPOSITORY, "1.0", seed=800)
        unsigned = push_small_image(pusher, REPOSITORY, "2.0", seed=801)
        tag = image.digest.replace(":", "-")
        signature = push_artifact(pusher, image, SIGNATURE_TYPE, b'{"sig": 1}', f"{tag}.sig")
        sbom = push_artifact(pusher, image, SBOM_TYPE, b'{"spdxVersion": "SPDX-2.3"}', None)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": p.digest, "size": len(p.manifest),
                 "artifactType": kind}
                for p, kind in ((signature, SIGNATURE_TYPE), (sbom, SBOM_TYPE))
            ],
        }  # fmt: skip
        pusher.push_manifest(REPOSITORY, tag, json.dumps(index).encode(), OCI_INDEX)
    return Signed(image, signature, sbom, unsigned)


@pytest.fixture(scope="module")
def account(dockyard: DockyardServer) -> Account:
    return dockyard.provision("verifier", "verify")


def get(
    server: DockyardServer, account: Account, tail: str, method: str = "GET", **query: str
) -> httpx.Response:
    token = server.registry_token(account, "signed")
    return httpx.request(
        method,
        f"{server.url}/v2/{account.group}/dependency_proxy/containers/signed/{tail}",
        params=query,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_referrers_fall_back_to_the_tag_schema(
    dockyard: DockyardServer, account: Account, signed: Signed
) -> None:
    answer = get(dockyard, account, f"referrers/{signed.image.digest}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == OCI_INDEX
    index = answer.json()
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    assert [(d["digest"], d["artifactType"]) for d in index["manifests"]] == [
        (signed.signature.digest, SIGNATURE_TYPE),
        (signed.sbom.digest, SBOM_TYPE),
    ]
    assert "oci-filters-applied" not in answer.headers
    head = get(dockyard, account, f"referrers/{signed.image.digest}", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == answer.headers["content-length"]
    assert head.headers["content-type"] == answer.headers["content-type"]


def test_the_artifact_type_filter_is_applied_and_said(
    dockyard: DockyardServer, account: Account, signed: Signed
) -> None:
    answer = get(dockyard, account, f"referrers/{signed.image.digest}", artifactType=SBOM_TYPE)
    assert answer.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in answer.json()["manifests"]] == [signed.sbom.digest]


def test_a_manifest_without_referrers_has_an_empty_index_not_a_404(
    dockyard: DockyardServer, account: Account, signed: Signed
) -> None:
    answer = get(dockyard, account, f"referrers/{signed.unsigned.digest}")
    assert answer.status_code == 200
    assert answer.json()["manifests"] == []


def test_referrers_are_cached_briefly(
    dockyard: DockyardServer,
    account: Account,
    signed: Signed,
    reference_registry: SeededReferenceRegistry,
) -> None:
    first = get(dockyard, account, f"referrers/{signed.image.digest}")
    reference_registry.reset_counts()
    again = get(dockyard, account, f"referrers/{signed.image.digest}")
    assert again.headers["x-cache"] == "HIT" and again.content == first.content
    assert reference_registry.count() == 0


def test_referrers_are_served_stale_when_the_upstream_is_down(
    tmp_path: Path, signed: Signed, reference_registry: SeededReferenceRegistry
) -> None:
    env = {"DOCKYARD_TAGS_LIST_CACHE_SECONDS": "0"}
    with DockyardServer(tmp_path / "uncached", reference_registry.url, env=env) as server:
        account = server.provision("stale-verifier", "stale-verify")
        fresh = get(server, account, f"referrers/{signed.image.digest}")
        assert fresh.headers["x-cache"] == "MISS"
        reference_registry.stop()
        stale = get(server, account, f"referrers/{signed.image.digest}")
        assert stale.status_code == 200
        assert stale.headers["x-cache"] == "STALE" and stale.content == fresh.content
        never_asked = get(server, account, f"referrers/{signed.unsigned.digest}")
        assert never_asked.status_code == 503


def test_cosign_style_tags_pull_like_any_tag(
    dockyard: DockyardServer, account: Account, signed: Signed
) -> None:
    tag = signed.image.digest.replace(":", "-")
    signature = get(dockyard, account, f"manifests/{tag}.sig")
    assert signature.status_code == 200
    assert signature.content == signed.signature.manifest
    assert signature.headers["docker-content-digest"] == signed.signature.digest
    index = get(dockyard, account, f"manifests/{tag}")
    assert index.status_code == 200 and index.headers["content-type"] == OCI_INDEX
    assert get(dockyard, account, f"manifests/{tag}.att").status_code == 404

    result = subprocess.run(
        [
            require("skopeo"), "inspect", "--raw", "--tls-verify=false",
            "--creds", f"{account.username}:{account.token}",
            f"docker://{dockyard.prefix(account.group)}/signed:{tag}.sig",
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == signed.signature.manifest
