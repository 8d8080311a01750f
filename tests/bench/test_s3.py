"""Dockyard on S3 (a real SeaweedFS, `weed mini`): cached blobs and a cold pull.

- **Cached blob**: the 256 MiB layer, cached in the bucket, downloaded with curl
  from Dockyard streaming it out of the bucket, from Dockyard answering a 307 to
  a pre-signed URL (curl follows it), and directly from SeaweedFS with a
  pre-signed GET (the ceiling: what the S3 server gives one client), taking
  turns. The ratio is against the direct GET.
- **Cold pull**: `skopeo copy` of the 256 MiB image through a Dockyard on an empty
  prefix of the bucket, and through distribution 2.8's pull-through mode with its
  `s3` storage driver on another empty prefix of the same bucket, alternating
  which goes first; the direct pull from the upstream is timed in the same round.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.bench.clients import assert_pulled, curl_download, skopeo_copy
from tests.bench.report import REPORT, Row, median, ratio_at_least, ratio_at_most
from tests.bench.servers import BenchDockyard, DockyardTemplate
from tests.bench.workload import ROUNDS, UPSTREAM_CREDS, BenchImages
from tests.support.dockyard_server import s3_settings
from tests.support.fixtures import S3_BUCKET, SeededReferenceRegistry
from tests.support.reference_registry import PullThroughRegistry
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedS3
from tests.support.token_server import PULL_USER

pytestmark = pytest.mark.e2e

DOWNLOADS = 9


class S3PullThroughRegistry(PullThroughRegistry):
    """distribution's pull-through cache with its `s3` storage driver on SeaweedFS.

    Redirects are off: like Dockyard's default, it streams blobs itself."""

    def __init__(self, workdir: Path, remote_url: str, seaweed: SeaweedS3, root: str) -> None:
        super().__init__(workdir, remote_url, *PULL_USER)
        self.seaweed = seaweed
        self.root = root

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["storage"] = {
            "s3": {
                "accesskey": ACCESS_KEY,
                "secretkey": SECRET_KEY,
                "region": REGION,
                "regionendpoint": self.seaweed.endpoint,
                "bucket": S3_BUCKET,
                "rootdirectory": self.root,
                "secure": False,
                "v4auth": True,
            },
            "delete": {"enabled": True},
            "redirect": {"disable": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        }
        return config


def s3_dockyard(
    workdir: Path, template: DockyardTemplate, seaweed: SeaweedS3, prefix: str, **options: bool
) -> BenchDockyard:
    dockyard = BenchDockyard(workdir, template)
    dockyard.env.update(s3_settings(seaweed, prefix, **options))
    return dockyard


def presigned(seaweed: SeaweedS3, key: str) -> str:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=seaweed.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    return str(
        client.generate_presigned_url(
            "get_object", Params={"Bucket": S3_BUCKET, "Key": key}, ExpiresIn=3600
        )
    )


def curl_following(url: str, headers: dict[str, str], timeout: float = 120.0) -> float:
    """Like curl_download, following a redirect (curl keeps Authorization on the
    first host only); MB/s over the whole exchange."""
    command = ["curl", "-sS", "--fail", "-L", "--max-time", str(int(timeout)), "-o", "/dev/null"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-w", "%{size_download} %{time_total} %{num_redirects}", url]
    result = subprocess.run(command, capture_output=True, timeout=timeout + 10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"curl -L {url} failed: {result.stderr.decode()}")
    size, seconds, redirects = result.stdout.decode().split()
    assert redirects == "1", "Dockyard did not redirect"
    return int(size) / float(seconds) / 1e6


def test_cached_blob_from_s3_streamed_and_redirected_against_a_direct_get(
    bench_images: BenchImages,
    dockyard_template: DockyardTemplate,
    seaweed: SeaweedS3,
    tmp_path: Path,
) -> None:
    image = bench_images.large
    layer = image.image.layers[0]
    hex_digest = layer.digest.removeprefix("sha256:")
    streaming = s3_dockyard(tmp_path / "streaming", dockyard_template, seaweed, "bench-cached/")
    redirect = s3_dockyard(
        tmp_path / "redirect", dockyard_template, seaweed, "bench-cached/", redirect=True
    )
    with streaming, redirect:
        url_streaming = streaming.url_for(image.repository, "blobs", layer.digest)
        url_redirect = redirect.url_for(image.repository, "blobs", layer.digest)
        headers_streaming = streaming.auth_headers(image.repository)
        headers_redirect = redirect.auth_headers(image.repository)
        curl_download(url_streaming, headers_streaming, timeout=300)  # cold, untimed
        direct_url = presigned(seaweed, f"bench-cached/blobs/sha256/{hex_digest[:2]}/{hex_digest}")
        samples: dict[str, list[float]] = defaultdict(list)
        for _ in range(DOWNLOADS):  # taking turns: all three see the same machine
            samples["streamed"].append(curl_download(url_streaming, headers_streaming))
            samples["redirect"].append(curl_following(url_redirect, headers_redirect))
            samples["direct"].append(curl_download(direct_url, {}))
    direct = median(samples["direct"])
    for mode, note in (
        ("streamed", "Dockyard reads the bucket and streams"),
        ("redirect", "307 to a pre-signed URL, curl -L; time includes the redirect"),
    ):
        REPORT.add(
            Row(
                f"cached blob on S3, {mode}, {image.label}",
                "MB/s",
                median(samples[mode]),
                direct=direct,
                samples=DOWNLOADS,
                target=ratio_at_least(0.9),
                note=f"{note}; ratio against a direct pre-signed GET from SeaweedFS",
                against="direct",
            )
        )


def _blob_downloads(upstream: SeededReferenceRegistry) -> int:
    """Blob GETs that carried bytes (a 401 before the token dance carries none)."""
    return sum(
        1
        for entry in upstream.access_log()
        if entry.method == "GET" and entry.status == 200 and "/blobs/sha256:" in entry.path
    )


def _wait_for_downloads(upstream: SeededReferenceRegistry, count: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while _blob_downloads(upstream) < count and time.monotonic() < deadline:
        time.sleep(0.5)


def _wait_for_quiet(upstream: SeededReferenceRegistry, seconds: float = 60.0) -> None:
    """Until the upstream's access log has not grown for 5 s (a request is logged
    when it ends; a 256 MiB GET takes about 3 s here)."""
    deadline = time.monotonic() + seconds
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(upstream.access_log())
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= 5.0:
            return
        time.sleep(0.5)


def _pull(reference: str, creds: str | None, blobs: list[tuple[str, int]], scratch: Path) -> float:
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        elapsed = skopeo_copy(reference, scratch, creds)
        assert_pulled(scratch, blobs)
        return elapsed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_cold_pull_on_s3_against_distribution_on_the_same_s3(
    bench_images: BenchImages,
    dockyard_template: DockyardTemplate,
    upstream: SeededReferenceRegistry,
    seaweed: SeaweedS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # distribution 2.8's AWS SDK panics on AWS_CA_BUNDLE ("HTTPClient's transport
    # unsupported type"); the endpoint is plain HTTP on 127.0.0.1 anyway.
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    image = bench_images.large
    scratch = tmp_path / "pull"
    samples: dict[str, list[float]] = defaultdict(list)
    gets: dict[str, int] = defaultdict(int)
    for number in range(ROUNDS):
        prefix = f"bench-cold-{number}/"
        dockyard = s3_dockyard(tmp_path / f"dockyard-{number}", dockyard_template, seaweed, prefix)
        proxy = S3PullThroughRegistry(
            tmp_path / f"proxy-{number}", upstream.url, seaweed, f"/bench-proxy-{number}"
        )
        with dockyard, proxy:
            pulls = {
                "dockyard": (dockyard.reference(image.dockyard_name), dockyard_template.creds),
                "proxy": (f"{proxy.host}/{image.upstream_name}", None),
            }
            order = ["dockyard", "proxy"] if number % 2 == 0 else ["proxy", "dockyard"]
            for system in order:
                upstream.reset_counts()
                samples[system].append(_pull(*pulls[system], image.blobs, scratch))
                # distribution stores in the background with a second upstream GET of
                # each blob: wait for those, so they are counted as the proxy's and do
                # not slow (or get counted for) the next pull.
                if system == "proxy":
                    _wait_for_downloads(upstream, 2 * len(image.blobs))
                _wait_for_quiet(upstream)
                gets[system] = max(gets[system], _blob_downloads(upstream))
            direct = f"{upstream.host}/{image.upstream_name}"
            samples["direct"].append(_pull(direct, UPSTREAM_CREDS, image.blobs, scratch))
    REPORT.add(
        Row(
            f"skopeo pull on S3, {image.label}, cold",
            "s",
            median(samples["dockyard"]),
            median(samples["proxy"]),
            median(samples["direct"]),
            samples=ROUNDS,
            target=ratio_at_most(1.0),
            note=(
                "both on SeaweedFS (weed mini), empty prefixes; one Dockyard instance; "
                f"upstream blob GETs per cold pull: Dockyard {gets['dockyard']}, "
                f"proxy {gets['proxy']}"
            ),
        )
    )
