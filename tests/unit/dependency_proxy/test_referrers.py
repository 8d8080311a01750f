"""The referrers API passthrough of UpstreamClient, and the filter applied when the
upstream did not. No registry installable here has the OCI 1.1 referrers API
(distribution 2.8 has not; tests/e2e/test_referrers.py covers its tag-schema
fallback), so the upstream's answers are scripted with httpx's MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from app.dependency_proxy.errors import InvalidReference, UpstreamUnavailable
from app.dependency_proxy.listings import OCI_INDEX, FetchedReferrers
from app.dependency_proxy.services.get_referrers import _filtered, fallback_tag
from app.dependency_proxy.upstream import UpstreamClient

DIGEST = "sha256:" + "ab" * 32
SIG = {"mediaType": "m", "digest": "sha256:" + "01" * 32, "size": 1, "artifactType": "sig"}
SBOM = {"mediaType": "m", "digest": "sha256:" + "02" * 32, "size": 1, "artifactType": "sbom"}


def index(*descriptors: dict[str, object]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    ).encode()


def client_for(
    answer: Callable[[httpx.Request], httpx.Response],
) -> tuple[UpstreamClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    client = UpstreamClient("http://upstream.test", transport=httpx.MockTransport(handler))
    return client, seen


async def test_referrers_pass_through_with_the_filter_the_upstream_applied() -> None:
    client, seen = client_for(
        lambda request: httpx.Response(
            200,
            content=index(SBOM),
            headers={"Content-Type": OCI_INDEX, "OCI-Filters-Applied": "artifactType"},
        )
    )
    fetched = await client.get_referrers("alpine", DIGEST, None, artifact_type="sbom")
    await client.aclose()
    assert fetched == FetchedReferrers(index(SBOM), OCI_INDEX, "artifactType")
    (request,) = seen
    assert request.url.path == f"/v2/library/alpine/referrers/{DIGEST}"
    assert request.url.params["artifactType"] == "sbom"


async def test_an_upstream_without_the_api_is_none_so_the_tag_schema_is_used() -> None:
    client, _ = client_for(lambda request: httpx.Response(404))
    assert await client.get_referrers("alpine", DIGEST, None) is None
    await client.aclose()
    assert fallback_tag(DIGEST) == "sha256-" + "ab" * 32


async def test_an_answer_that_is_no_index_is_an_upstream_failure() -> None:
    client, _ = client_for(lambda request: httpx.Response(200, content=b"<html>"))
    with pytest.raises(UpstreamUnavailable):
        await client.get_referrers("alpine", DIGEST, None)
    with pytest.raises(InvalidReference):
        await client.get_referrers("alpine", "sha256:../../x", None)
    await client.aclose()


def test_the_filter_is_applied_here_when_the_upstream_did_not() -> None:
    unfiltered = FetchedReferrers(index(SIG, SBOM), OCI_INDEX, "")
    content, applied = _filtered(unfiltered, "sig")
    assert applied == "artifactType"
    assert json.loads(content)["manifests"] == [SIG]
    assert _filtered(unfiltered, None) == (unfiltered.content, "")
    nothing, _ = _filtered(unfiltered, "attestation")
    assert json.loads(nothing) == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
