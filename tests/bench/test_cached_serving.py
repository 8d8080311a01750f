"""Serving from a warm cache: blob throughput (curl) and manifest requests per second.

Dockyard and distribution's pull-through mode each cache the large image once
(a cold GET, untimed); then the cached blob is downloaded with curl, the two
systems taking turns, and each cached manifest URL is hammered by wrk (or a
bounded httpx loop) for a few seconds. The token dance happens once, before
the timing. The same cache is then served by the other ASGI servers that
``make bench`` could install (uvicorn with httptools+uvloop, granian): an
experiment on the serving path, the app is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.bench.clients import curl_download, request_rate
from tests.bench.report import REPORT, Row, Target, median, ratio_at_least
from tests.bench.servers import SERVERS, BenchDockyard, DockyardTemplate, Nginx, server_available
from tests.bench.workload import BenchImage, BenchImages
from tests.support.images import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from tests.support.reference_registry import PullThroughRegistry

pytestmark = pytest.mark.e2e

DOWNLOADS = 9
RATE_SECONDS = 5
# Issue 12: by digest with a bearer token and the whole policy check on every
# request, against the proxy that checks nothing; by tag inside the group's
# revalidation window (no upstream HEAD) against the proxy, which asks its
# upstream for every tag.
DIGEST_TARGET = ratio_at_least(1.5)
TAG_IN_WINDOW_TARGET = ratio_at_least(3.0)
REVALIDATION_INTERVAL = 3600
ACCEPT = {"Accept": ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))}


class Endpoints:
    """The cached blob and manifest URLs of one system, with the headers to use."""

    def __init__(self, blob: str, by_digest: str, by_tag: str, headers: dict[str, str]) -> None:
        self.blob, self.by_digest, self.by_tag = blob, by_digest, by_tag
        self.headers = headers | ACCEPT

    def fill(self) -> None:
        """One cold GET of each, so that everything measured afterwards is a hit."""
        curl_download(self.blob, self.headers, timeout=300)
        for url in (self.by_digest, self.by_tag):
            httpx.get(url, headers=self.headers, timeout=30).raise_for_status()


def dockyard_endpoints(dockyard: BenchDockyard, image: BenchImage) -> Endpoints:
    name, layer = image.repository, image.image.layers[0]
    return Endpoints(
        dockyard.url_for(name, "blobs", layer.digest),
        dockyard.url_for(name, "manifests", image.image.digest),
        dockyard.url_for(name, "manifests", image.image.tag or "latest"),
        dockyard.auth_headers(name),
    )


def proxy_endpoints(proxy: PullThroughRegistry, image: BenchImage) -> Endpoints:
    base = f"{proxy.url}/v2/{image.image.repository}"
    layer = image.image.layers[0]
    tag = image.image.tag or "latest"
    return Endpoints(
        f"{base}/blobs/{layer.digest}",
        f"{base}/manifests/{image.image.digest}",
        f"{base}/manifests/{tag}",
        {},
    )


def _throughput(dockyard: Endpoints, proxy: Endpoints) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(DOWNLOADS):  # taking turns, so both see the same machine
        ours.append(curl_download(dockyard.blob, dockyard.headers))
        theirs.append(curl_download(proxy.blob, proxy.headers))
    return ours, theirs


def _measure(server: str, dockyard: Endpoints, proxy: Endpoints, image: BenchImage) -> None:
    label = "" if server == "uvicorn" else f" [{server}, experiment]"
    ours, theirs = _throughput(dockyard, proxy)
    REPORT.add(
        Row(
            f"cached blob download, {image.label}{label}",
            "MB/s",
            median(ours),
            median(theirs),
            samples=DOWNLOADS,
            target=ratio_at_least(1.0),
        )
    )
    for kind in ("by_digest", "by_tag"):
        note = "both revalidate the tag upstream" if kind == "by_tag" else ""
        target = DIGEST_TARGET if kind == "by_digest" else None
        _rate_row(
            f"cached manifest {kind.replace('_', ' ')}{label}", kind, dockyard, proxy, note, target
        )


def _rate_row(
    name: str, kind: str, dockyard: Endpoints, proxy: Endpoints, note: str, target: Target | None
) -> None:
    """wrk on one URL of each system, in turns: Dockyard, the proxy, Dockyard, the proxy."""
    ours = [request_rate(getattr(dockyard, kind), dockyard.headers, seconds=RATE_SECONDS)]
    theirs = [request_rate(getattr(proxy, kind), proxy.headers, seconds=RATE_SECONDS)]
    ours.append(request_rate(getattr(dockyard, kind), dockyard.headers, seconds=RATE_SECONDS))
    theirs.append(request_rate(getattr(proxy, kind), proxy.headers, seconds=RATE_SECONDS))
    errors = sum(rate.errors for rate in ours + theirs)
    text = f"{ours[0].tool}, 8 connections, best of 2 turns each" + (
        f", {errors} non-2xx" if errors else ""
    )
    REPORT.add(
        Row(
            name,
            "req/s",
            max(rate.requests_per_second for rate in ours),
            max(rate.requests_per_second for rate in theirs),
            samples=sum(rate.requests for rate in ours),
            target=target,
            note=f"{text}, {note}" if note else text,
        )
    )


def _measure_against_nginx(
    dockyard: BenchDockyard, endpoints: Endpoints, image: BenchImage, workdir: Path
) -> None:
    """The same cached file, from Dockyard (a bearer token, the policy check) and from
    nginx with sendfile (nothing checked), taking turns."""
    if not Nginx.available():
        print("\n[bench] nginx not installed: the nginx row is skipped")
        return
    hexdigest = image.image.layers[0].digest.removeprefix("sha256:")
    relative = f"blobs/sha256/{hexdigest[:2]}/{hexdigest}"
    assert (dockyard.data_dir / relative).is_file(), "the blob is not in the data folder"
    with Nginx(workdir, dockyard.data_dir) as nginx:
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(DOWNLOADS):
            ours.append(curl_download(endpoints.blob, endpoints.headers))
            theirs.append(curl_download(nginx.url(relative), {}))
    REPORT.add(
        Row(
            f"cached blob download, {image.label}, against nginx",
            "MB/s",
            median(ours),
            median(theirs),
            samples=DOWNLOADS,
            target=ratio_at_least(0.9),
            note="the reference column is nginx (sendfile on, as many workers as cores) "
            "serving Dockyard's own file",
        )
    )


def _set_revalidation_interval(dockyard: BenchDockyard, seconds: int) -> None:
    """The group's revalidation window, set as an Owner does (GraphQL, the bench's api token)."""
    mutation = (
        "mutation($path: ID!, $seconds: Int) { updateDependencyProxySettings(input: "
        "{groupPath: $path, revalidationInterval: $seconds}) { errors } }"
    )
    answer = httpx.post(
        f"{dockyard.url}/api/graphql",
        json={"query": mutation, "variables": {"path": dockyard.account.group, "seconds": seconds}},
        headers={"Authorization": f"Bearer {dockyard.account.token}"},
        timeout=30,
    )
    answer.raise_for_status()
    assert answer.json()["data"]["updateDependencyProxySettings"]["errors"] == [], answer.text


def _measure_tag_in_window(dockyard: BenchDockyard, endpoints: Endpoints, proxy: Endpoints) -> None:
    _set_revalidation_interval(dockyard, REVALIDATION_INTERVAL)
    try:
        httpx.get(endpoints.by_tag, headers=endpoints.headers, timeout=30).raise_for_status()
        _rate_row(
            "cached manifest by tag, inside the revalidation window",
            "by_tag",
            endpoints,
            proxy,
            f"Dockyard revalidates every {REVALIDATION_INTERVAL} s, the proxy every time",
            TAG_IN_WINDOW_TARGET,
        )
    finally:
        _set_revalidation_interval(dockyard, 0)


def test_cached_blob_throughput_and_manifest_rate(
    bench_images: BenchImages,
    dockyard_template: DockyardTemplate,
    fresh_proxy: PullThroughRegistry,
    tmp_path: Path,
) -> None:
    image = bench_images.large
    proxy = proxy_endpoints(fresh_proxy, image)
    proxy.fill()
    workdir = tmp_path / "dockyard"
    dockyard = BenchDockyard(workdir, dockyard_template)
    with dockyard:
        endpoints = dockyard_endpoints(dockyard, image)
        endpoints.fill()
        _measure("uvicorn", endpoints, proxy, image)
        _measure_tag_in_window(dockyard, endpoints, proxy)
        _measure_against_nginx(dockyard, endpoints, image, tmp_path / "nginx")
    for server in SERVERS:
        if server == "uvicorn":
            continue
        if not server_available(server):
            print(f"\n[bench] {server} not installed in .venv/bench-extras: skipped")
            continue
        variant = BenchDockyard(workdir, dockyard_template, server=server)
        variant.restart()  # the same data folder: the cache is already warm
        try:
            _measure(server, dockyard_endpoints(variant, image), proxy, image)
        finally:
            variant.stop()
