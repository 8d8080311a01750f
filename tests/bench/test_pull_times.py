"""skopeo pulls, cold and warm: Dockyard vs distribution's pull-through mode vs direct.

Each round starts Dockyard on an empty cache (a copy of the provisioned
template) and a pull-through registry on empty storage, then pulls each image
twice through both: the first pull is cold (every blob comes from the
upstream), the second warm (served from the cache; tags are still revalidated
with the upstream, by both). A direct pull from the upstream is timed in the
same round as the baseline. Server start-up is never timed.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from tests.bench.clients import assert_pulled, skopeo_copy
from tests.bench.report import REPORT, Row, median, ratio_at_most
from tests.bench.servers import BenchDockyard, DockyardTemplate
from tests.bench.workload import ROUNDS, UPSTREAM_CREDS, BenchImage, BenchImages
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.reference_registry import PullThroughRegistry
from tests.support.token_server import PULL_USER

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, str, str], list[float]]


def _pull(reference: str, creds: str | None, image: BenchImage, scratch: Path) -> float:
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        elapsed = skopeo_copy(reference, scratch, creds)
        assert_pulled(scratch, image.blobs)
        return elapsed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _blob_downloads(upstream: SeededReferenceRegistry) -> int:
    """Blob GETs that carried bytes (a 401 before the token dance carries none)."""
    return sum(
        1
        for entry in upstream.access_log()
        if entry.method == "GET" and entry.status == 200 and "/blobs/sha256:" in entry.path
    )


def _one_round(
    number: int,
    images: BenchImages,
    template: DockyardTemplate,
    upstream: SeededReferenceRegistry,
    workdir: Path,
    samples: Samples,
    upstream_gets: dict[tuple[str, str], list[int]],
) -> None:
    scratch = workdir / "pull"
    dockyard = BenchDockyard(workdir / f"dockyard-{number}", template)
    proxy = PullThroughRegistry(workdir / f"proxy-{number}", upstream.url, *PULL_USER)
    with dockyard, proxy:
        systems = {
            "dockyard": lambda image: (dockyard.reference(image.dockyard_name), template.creds),
            "proxy": lambda image: (f"{proxy.host}/{image.upstream_name}", None),
        }
        order = list(systems) if number % 2 == 0 else list(reversed(systems))
        for image in images.all():
            for system in order:
                reference, creds = systems[system](image)
                upstream.reset_counts()
                samples[image.label, system, "cold"].append(_pull(reference, creds, image, scratch))
                upstream_gets[image.label, system].append(_blob_downloads(upstream))
                samples[image.label, system, "warm"].append(_pull(reference, creds, image, scratch))
            direct = f"{upstream.host}/{image.upstream_name}"
            samples[image.label, "direct", "-"].append(
                _pull(direct, UPSTREAM_CREDS, image, scratch)
            )


def test_skopeo_pull_times(
    bench_images: BenchImages,
    dockyard_template: DockyardTemplate,
    upstream: SeededReferenceRegistry,
    tmp_path: Path,
) -> None:
    samples: Samples = defaultdict(list)
    upstream_gets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for number in range(ROUNDS):
        _one_round(
            number, bench_images, dockyard_template, upstream, tmp_path, samples, upstream_gets
        )
    for image in bench_images.all():
        direct = median(samples[image.label, "direct", "-"])
        gets = {system: max(upstream_gets[image.label, system]) for system in ("dockyard", "proxy")}
        for phase, bound in (("cold", 1.1), ("warm", 1.0)):
            note = (
                f"upstream blob GETs: Dockyard {gets['dockyard']}, proxy {gets['proxy']}"
                if phase == "cold"
                else ""
            )
            REPORT.add(
                Row(
                    f"skopeo pull, {image.label}, {phase}",
                    "s",
                    median(samples[image.label, "dockyard", phase]),
                    median(samples[image.label, "proxy", phase]),
                    direct,
                    samples=ROUNDS,
                    target=ratio_at_most(bound),
                    note=note,
                )
            )
