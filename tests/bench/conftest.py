"""Benchmark fixtures: the images, the Dockyard template, and the printed report.

The session's reference registry (tests.support.fixtures, loaded by the root
conftest) is the upstream; tests.bench.workload says what is pulled.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.report import REPORT
from tests.bench.scale_report import SCALE_REPORT
from tests.bench.servers import DockyardTemplate, provision_template
from tests.bench.workload import BenchImages, push_bench_images
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.reference_registry import PullThroughRegistry, RegistryPusher
from tests.support.token_server import PULL_USER, PUSH_USER


@pytest.fixture(scope="session", autouse=True)
def bench_tools() -> None:
    missing = [tool for tool in ("docker-registry", "skopeo", "curl") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (make bench installs them as root)")


@pytest.fixture(scope="session")
def upstream(reference_registry_session: SeededReferenceRegistry) -> SeededReferenceRegistry:
    return reference_registry_session


@pytest.fixture(scope="session")
def bench_images(upstream: SeededReferenceRegistry) -> BenchImages:
    with RegistryPusher(upstream.url, *PUSH_USER) as pusher:
        return push_bench_images(pusher)


@pytest.fixture(scope="session")
def dockyard_template(
    tmp_path_factory: pytest.TempPathFactory, upstream: SeededReferenceRegistry
) -> DockyardTemplate:
    return provision_template(tmp_path_factory.mktemp("dockyard-template"), upstream.url)


@pytest.fixture
def fresh_proxy(tmp_path: Path, upstream: SeededReferenceRegistry) -> Iterator[PullThroughRegistry]:
    """distribution's pull-through cache on empty storage, in front of the upstream."""
    proxy = PullThroughRegistry(tmp_path / "proxy", upstream.url, *PULL_USER)
    with proxy:
        yield proxy


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCALE_REPORT.runs:
        terminalreporter.section("Dockyard data-scale benchmark")
        terminalreporter.write_line(SCALE_REPORT.table())
        results = os.environ.get("DOCKYARD_BENCH_SCALE_RESULTS")
        if results:
            SCALE_REPORT.save(Path(results))
            terminalreporter.write_line(f"results saved to {results}")
    if not REPORT.rows:
        return
    terminalreporter.section("Dockyard benchmark")
    terminalreporter.write_line(REPORT.table())
    results = os.environ.get("DOCKYARD_BENCH_RESULTS")
    if results:
        REPORT.save(Path(results))
        terminalreporter.write_line(f"results saved to {results}")
