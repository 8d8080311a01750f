"""Protocol details a standard client or the OCI distribution spec expects, checked
against a live Dockyard in front of the real reference registry (issue 9 point 8)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e

# Added by the HTTP server to every response; everything else must match.
VOLATILE = {"date", "x-request-id"}  # a request id is per request by design


class Puller:
    """Requests of one account, as skopeo or crane make them (bearer token per image)."""

    def __init__(self, server: DockyardServer, account: Account) -> None:
        self.server = server
        self.account = account
        self._tokens: dict[str, str] = {}

    def request(
        self, method: str, image: str, tail: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        if image not in self._tokens:
            self._tokens[image] = self.server.registry_token(self.account, image)
        url = (
            f"{self.server.url}/v2/{self.account.group}/dependency_proxy/containers/{image}/{tail}"
        )
        bearer = {"Authorization": f"Bearer {self._tokens[image]}", **(headers or {})}
        return httpx.request(method, url, headers=bearer, timeout=30)


def comparable(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() not in VOLATILE}


@pytest.fixture(scope="module")
def first(dockyard: DockyardServer) -> Puller:
    return Puller(dockyard, dockyard.provision("proto-first", "proto-first"))


@pytest.fixture(scope="module")
def second(dockyard: DockyardServer) -> Puller:
    return Puller(dockyard, dockyard.provision("proto-second", "proto-second"))


def test_head_and_get_of_a_manifest_agree_on_every_header_cached_and_not(
    first: Puller, second: Puller, seeded_images: SeededImages
) -> None:
    image = seeded_images.nginx
    # Uncached in both groups: one HEADs, the other GETs.
    head = first.request("HEAD", "nginx", "manifests/1.25")
    get = second.request("GET", "nginx", "manifests/1.25")
    assert head.status_code == get.status_code == 200
    assert head.headers["x-cache"] == get.headers["x-cache"] == "MISS"
    assert comparable(head) == comparable(get)
    assert get.content == image.manifest and head.content == b""
    assert get.headers["docker-content-digest"] == image.digest
    assert get.headers["content-length"] == str(len(image.manifest))
    # Cached in both now.
    head, get = (
        p.request(m, "nginx", "manifests/1.25") for p, m in ((second, "HEAD"), (first, "GET"))
    )
    assert head.headers["x-cache"] == get.headers["x-cache"] == "HIT"
    assert comparable(head) == comparable(get)
    by_digest = [first.request(m, "nginx", f"manifests/{image.digest}") for m in ("HEAD", "GET")]
    assert comparable(by_digest[0]) == comparable(by_digest[1])
    assert by_digest[1].headers["docker-content-digest"] == image.digest


def test_head_of_an_uncached_blob_is_a_miss_and_downloads_nothing(
    first: Puller,
    second: Puller,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
) -> None:
    blob = seeded_images.many_layers.layers[3]
    tail = f"blobs/{blob.digest}"
    head = first.request("HEAD", "many-layers", tail)
    assert head.status_code == 200
    assert head.headers["x-cache"] == "MISS"
    assert head.headers["content-length"] == str(blob.size)
    assert head.headers["docker-content-digest"] == blob.digest
    assert reference_registry.blob_requests(blob.digest, method="GET") == 0
    answered = [e for e in reference_registry.access_log() if blob.digest in e.path]
    # The first attempt may be the token dance's 401; one HEAD was answered.
    assert [(e.method, e.status) for e in answered if e.status != 401] == [("HEAD", 200)]

    get = second.request("GET", "many-layers", tail)  # uncached for this group too
    assert get.headers["x-cache"] == "MISS"
    assert hashlib.sha256(get.content).hexdigest() == blob.digest.removeprefix("sha256:")
    assert comparable(head) == comparable(get)

    # The HEAD cached nothing for the first group: still a miss (the bytes are on
    # disk for the second group, but the first group has not pulled them).
    assert first.request("HEAD", "many-layers", tail).headers["x-cache"] == "MISS"


def test_head_and_get_of_a_cached_blob_agree_on_every_header(
    first: Puller, seeded_images: SeededImages, reference_registry: SeededReferenceRegistry
) -> None:
    blob = seeded_images.many_layers.layers[4]
    tail = f"blobs/{blob.digest}"
    assert first.request("GET", "many-layers", tail).headers["x-cache"] == "MISS"
    reference_registry.reset_counts()
    head = first.request("HEAD", "many-layers", tail)
    get = first.request("GET", "many-layers", tail)
    assert head.headers["x-cache"] == get.headers["x-cache"] == "HIT"
    assert comparable(head) == comparable(get)
    assert head.headers["accept-ranges"] == "bytes"
    assert get.headers["docker-content-digest"] == blob.digest
    ranged = [
        first.request(m, "many-layers", tail, {"Range": "bytes=10-19"}) for m in ("HEAD", "GET")
    ]
    assert [r.status_code for r in ranged] == [206, 206]
    assert comparable(ranged[0]) == comparable(ranged[1])
    assert reference_registry.count() == 0


@pytest.mark.parametrize("header", ["items=0-10", "bytes=abc", "bytes=20-10", "bytes=0-1,5-6"])
def test_a_range_we_do_not_serve_is_ignored(
    first: Puller, seeded_images: SeededImages, header: str
) -> None:
    blob = seeded_images.alpine.layers[1]
    tail = f"blobs/{blob.digest}"
    first.request("GET", "alpine", tail)  # cached
    answer = first.request("GET", "alpine", tail, {"Range": header})
    assert answer.status_code == 200
    assert answer.content == blob.data
    assert answer.headers["docker-content-digest"] == blob.digest


def test_a_range_is_served_and_an_unsatisfiable_one_is_416(
    first: Puller, seeded_images: SeededImages
) -> None:
    blob = seeded_images.alpine.layers[1]
    assert blob.data is not None
    tail = f"blobs/{blob.digest}"
    first.request("GET", "alpine", tail)
    part = first.request("GET", "alpine", tail, {"Range": "Bytes=100-199"})
    assert part.status_code == 206 and part.content == blob.data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{blob.size}"
    for method in ("GET", "HEAD"):
        refused = first.request(method, "alpine", tail, {"Range": f"bytes={blob.size}-"})
        assert refused.status_code == 416
        assert refused.headers["content-range"] == f"bytes */{blob.size}"
        assert refused.headers["docker-content-digest"] == blob.digest
    body = first.request("GET", "alpine", tail, {"Range": "bytes=-0"}).json()
    assert body["errors"][0]["code"] == "RANGE_INVALID"


@pytest.mark.parametrize(
    ("tail", "status", "code"),
    [
        ("manifests/not!a-tag", 404, "MANIFEST_UNKNOWN"),
        ("manifests/sha256:1234", 400, "DIGEST_INVALID"),
        ("blobs/sha256:zz", 400, "DIGEST_INVALID"),
        ("manifests/no-such-tag", 404, "MANIFEST_UNKNOWN"),
        (f"blobs/sha256:{'0' * 64}", 404, "BLOB_UNKNOWN"),
    ],
)
def test_bad_and_unknown_references_get_oci_errors(
    first: Puller, tail: str, status: int, code: str
) -> None:
    for method in ("GET", "HEAD"):
        answer = first.request(method, "alpine", tail)
        assert answer.status_code == status
        if method == "GET":
            assert answer.json()["errors"][0]["code"] == code
