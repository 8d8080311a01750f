"""The data-scale benchmark (`make bench-scale`): what a page, GitLab's example query,
/admin, clearing and cleanup cost with 1k, 10k and 100k manifests (x5 blobs) in one
group or across 200 nested groups, on SQLite and PostgreSQL, and what they do to pulls
of another group meanwhile.

A live `dockyard serve` (real upstream: the reference registry) holds the rows,
inserted straight with SQL; another group pulls a cached manifest by digest every
20 ms (the measured pulls) and by tag every 250 ms (each one a HEAD upstream and a
write), so the server is busy as a CI farm keeps it. Not collected by `make test`;
`make bench` skips it unless DOCKYARD_BENCH_SCALE is set (`make bench-scale` sets it).

DOCKYARD_BENCH_SCALE_SIZES (default 1000,10000,100000), DOCKYARD_BENCH_SCALE_DATABASES
(sqlite,postgres), DOCKYARD_BENCH_SCALE_LAYOUTS (one,spread), DOCKYARD_BENCH_SCALE_TIMEOUT
(seconds a CLI command may take, default 600), DOCKYARD_BENCH_SCALE_PYTHONPATH (run
another checkout of Dockyard, e.g. the code before a change, with this benchmark),
DOCKYARD_BENCH_SCALE_RESULTS (save the table's numbers as JSON).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.bench.pull_load import PullLoop
from tests.bench.scale_report import SCALE_REPORT, Run
from tests.support.bulk_rows import (
    FILE_EVERY,
    PostgresRows,
    Rows,
    SqliteRows,
    write_files,
)
from tests.support.dockyard_server import DOCKYARD, Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.postgres import PostgresServer, postgres_bin, throwaway_postgres

pytestmark = pytest.mark.skipif(
    not os.environ.get("DOCKYARD_BENCH_SCALE"), reason="make bench-scale runs it"
)

SIZES = [
    int(size)
    for size in os.environ.get("DOCKYARD_BENCH_SCALE_SIZES", "1000,10000,100000").split(",")
]
DATABASES = os.environ.get("DOCKYARD_BENCH_SCALE_DATABASES", "sqlite,postgres").split(",")
LAYOUTS = os.environ.get("DOCKYARD_BENCH_SCALE_LAYOUTS", "one,spread").split(",")
TIMEOUT = float(os.environ.get("DOCKYARD_BENCH_SCALE_TIMEOUT", "600"))
OTHER_CHECKOUT = os.environ.get("DOCKYARD_BENCH_SCALE_PYTHONPATH", "")
SPREAD_GROUPS = 200
REQUESTS = 15  # timed requests per page, after two untimed ones
PASSWORD = "bench-password-1234"
CSRF = re.compile(r'name="authenticity_token" value="([^"]+)"')
OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
DETAILS = (OPERATIONS / "getDependencyProxyDetails.graphql").read_text()
CLEAR = (OPERATIONS / "clearDependencyProxyCache.graphql").read_text()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer | None]:
    if "postgres" not in DATABASES or postgres_bin() is None:
        yield None
        return
    with throwaway_postgres("dockyard-bench-pg-") as server:
        yield server


@dataclass
class Bench:
    """One run: a server, its rows, the people who use it."""

    server: DockyardServer
    rows: Rows
    run: Run
    targets: list[int]  # the groups whose cache is measured
    target_path: str  # the group whose page is measured
    manifests_per_group: int
    owner: Account
    admin_token: str
    generation: int = 0

    def insert(self) -> tuple[int, int]:
        self.generation += 1
        self.rows.insert_cache(self.targets, self.manifests_per_group, self.generation)
        files = write_files(
            self.server.data_dir, self.targets, self.manifests_per_group, self.generation
        )
        return len(self.targets) * self.manifests_per_group, files

    def cli(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str] | None]:
        """Run a `dockyard` command beside the server: its wall time, None if it timed out."""
        started = time.monotonic()
        try:
            result = subprocess.run(
                [DOCKYARD, *args],
                env=self.server.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return time.monotonic() - started, None
        return time.monotonic() - started, result


def _server(workdir: Path, upstream: str, database_url: str | None) -> DockyardServer:
    env = {
        "DOCKYARD_CLEANUP_INTERVAL_SECONDS": "86400",  # the CLI's cleanup is measured
        "DOCKYARD_REGISTRY_TOKEN_EXPIRE_MINUTES": "1440",
    }
    if database_url:
        env["DOCKYARD_DATABASE_URL"] = database_url
    if OTHER_CHECKOUT:
        env["PYTHONPATH"] = OTHER_CHECKOUT
    return DockyardServer(workdir, upstream, env=env)


def _prepare(
    workdir: Path, upstream: str, database: str, size: int, layout: str, pg: PostgresServer | None
) -> Bench:
    url = pg.create_database(f"scale_{size}_{layout}") if pg else None
    server = _server(workdir, upstream, url)
    server.cli("migrate")
    server.user("ada", PASSWORD, admin=True)
    admin_token = server.cli("token", "create", "ada", "--name", "t", "--scopes", "api")["token"]
    owner = server.provision("olga", "big")
    rows: Rows = PostgresRows(url) if url else SqliteRows(server.data_dir / "dockyard.sqlite3")
    if layout == "one":
        targets = [server.cli("group", "list", "--search", "big")["groups"][0]["id"]]
        target_path, per_group = "big", size
    else:
        parent = server.cli("group", "create", "spread")["id"]
        server.cli("member", "add", "spread", "olga", "--role", "owner")
        names = [f"project-{number:03d}" for number in range(SPREAD_GROUPS)]
        targets = rows.insert_groups(parent, "spread", names)
        target_path, per_group = f"spread/{names[0]}", size // SPREAD_GROUPS
    label = f"{'SQLite' if not url else 'PostgreSQL'} {size // 1000}k, " + (
        "one group" if layout == "one" else f"{SPREAD_GROUPS} groups"
    )
    run = Run(label, target_run=size == max(SIZES) and layout == "one")
    return Bench(server, rows, run, targets, target_path, per_group, owner, admin_token)


def _signed_in(server: DockyardServer, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)
    form = client.get("/users/sign_in").text
    token = CSRF.search(form)
    assert token, "no CSRF token on the sign-in page"
    answer = client.post(
        "/users/sign_in",
        data={"authenticity_token": token.group(1), "login": username, "password": password},
    )
    assert answer.status_code == 303, answer.text[:300]
    return client


def _median_ms(request: Callable[[], httpx.Response]) -> float:
    for _ in range(2):
        request().raise_for_status()
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = request()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return statistics.median(times)


@dataclass
class Loops:
    """The measured digest pulls, and the tag pulls that make the server write."""

    by_digest: PullLoop
    by_tag: PullLoop


@contextmanager
def _pulls(bench: Bench, name: str, loops: Loops) -> Iterator[None]:
    started = time.monotonic()
    yield
    ended = time.monotonic()
    latency = loops.by_digest.window(started, ended)
    bench.run.add(f"pulls elsewhere during {name}, p50 / p99", latency.p99_ms, str(latency))
    tags = loops.by_tag.window(started, ended)
    bench.run.add(f"tag pulls (writes) during {name}, p50 / p99", tags.p99_ms, str(tags))


def _pages(bench: Bench, loop: Loops) -> None:
    server, run = bench.server, bench.run
    owner = _signed_in(server, bench.owner.username, bench.owner.password)
    admin = _signed_in(server, "ada", PASSWORD)
    page = f"/groups/{bench.target_path}/-/dependency_proxy"
    first = owner.get(page).text
    match = re.search(r'href="([^"]+)" rel="next"|rel="next" href="([^"]+)"', first)
    second = (match.group(1) or match.group(2)).replace("&amp;", "&") if match else page
    api = {"Authorization": f"Bearer {bench.owner.token}"}
    variables = {"fullPath": bench.target_path, "first": 20}
    with _pulls(bench, "page loads", loop):
        run.add("page 1 (ms)", _median_ms(lambda: owner.get(page)))
        run.add("page 2 (ms)", _median_ms(lambda: owner.get(second)))
        run.add(
            "GraphQL example query (ms)",
            _median_ms(
                lambda: owner.post(
                    "/api/graphql", json={"query": DETAILS, "variables": variables}, headers=api
                )
            ),
        )
        run.add("/admin (ms)", _median_ms(lambda: admin.get("/admin")))
    owner.close()
    admin.close()


def _cleanup_after_ttl(bench: Bench, loop: Loops, files: int) -> None:
    groups = ", ".join(str(group_id) for group_id in bench.targets)
    bench.rows.execute(
        "INSERT INTO dependency_proxy_image_ttl_group_policies (group_id, enabled, ttl,"
        f" created_at, updated_at) SELECT id, TRUE, 1, created_at, updated_at FROM groups"
        f" WHERE id IN ({groups})"
    )
    with _pulls(bench, "cleanup", loop):
        seconds, result = bench.cli("cache", "cleanup")
    rows = bench.manifests_per_group * len(bench.targets)
    name = "dockyard cache cleanup after TTL expiry (s)"
    if result is None:
        bench.run.add(name, seconds, f"> {TIMEOUT:.0f} (stopped)")
    else:
        failed = result.returncode != 0
        bench.run.add(name, seconds, f"failed: {result.stderr.strip()[-200:]}" if failed else None)
        if OTHER_CHECKOUT and failed:
            return
        assert not failed, result.stderr  # beside a busy server, never a failure
        bench.run.values[name] += f" [{result.stdout.strip()}]"
        left = bench.rows.scalar(
            f"SELECT COUNT(*) FROM dependency_proxy_blobs WHERE group_id IN ({groups})"
        )
        assert left == 0, f"{left} blob rows of {rows * 5} left"
        assert "deleted" in result.stdout
        assert f"and {files} files" in result.stdout or OTHER_CHECKOUT, result.stdout
    bench.rows.execute(
        f"DELETE FROM dependency_proxy_image_ttl_group_policies WHERE group_id IN ({groups})"
    )


def _clear(bench: Bench, loop: Loops, how: str) -> None:
    # The benchmark's own bulk insert holds SQLite's write lock for seconds:
    # no pulls meanwhile, they would measure the benchmark, not Dockyard.
    for pulls in (loop.by_digest, loop.by_tag):
        pulls.hold()
    manifests, _ = bench.insert()
    for pulls in (loop.by_digest, loop.by_tag):
        pulls.resume()
    time.sleep(1)
    group_id = bench.targets[0]
    name = "dockyard cache clear (s)" if how == "cli" else "clear with the GraphQL mutation (s)"
    with _pulls(bench, f"clear ({how})", loop):
        started = time.monotonic()
        if how == "cli":
            _, result = bench.cli("cache", "clear", bench.target_path)
            failure = (
                f"> {TIMEOUT:.0f} (stopped)"
                if result is None
                else (f"failed: {result.stderr.strip()[-200:]}" if result.returncode else None)
            )
        else:
            answer = httpx.post(
                f"{bench.server.url}/api/graphql",
                json={"query": CLEAR, "variables": {"groupPath": bench.target_path}},
                headers={"Authorization": f"Bearer {bench.owner.token}"},
                timeout=TIMEOUT,
            )
            ok = answer.status_code == 200 and not answer.json().get("errors")
            failure = None if ok else f"failed: {answer.status_code} {answer.text[:200]}"
        seconds = time.monotonic() - started
    bench.run.add(name, seconds, failure)
    assert failure is None or OTHER_CHECKOUT, failure
    if failure is None:
        left = bench.rows.scalar(
            "SELECT COUNT(*) FROM dependency_proxy_manifests"
            f" WHERE group_id = {group_id} AND status = 0"
        )
        assert left == 0, f"{left} of {manifests} manifests not marked"


def _prime_other_group(server: DockyardServer, images: SeededImages) -> tuple[Account, str]:
    """A second group that has pulled alpine for real: its pulls are the ones timed."""
    puller = server.provision("pat", "other")
    token = server.registry_token(puller, "alpine")
    base = f"{server.url}/v2/other/dependency_proxy/containers/alpine"
    headers = {"Authorization": f"Bearer {token}", "Accept": images.alpine.media_type}
    assert httpx.get(f"{base}/manifests/3.19", headers=headers, timeout=60).status_code == 200
    for blob in (images.alpine.config, *images.alpine.layers):
        assert httpx.get(f"{base}/blobs/{blob.digest}", headers=headers, timeout=60).is_success
    return puller, token


def _measure(bench: Bench, images: SeededImages, layout: str, files: int) -> None:
    server = bench.server
    _, token = _prime_other_group(server, images)
    base = f"{server.url}/v2/other/dependency_proxy/containers/alpine/manifests"
    by_digest = PullLoop(f"{base}/{images.alpine.digest}", token, 0.02, "digest pulls")
    by_tag = PullLoop(f"{base}/3.19", token, 0.25, "tag pulls")
    loops = Loops(by_digest, by_tag)
    by_digest.start()
    by_tag.start()
    try:
        with _pulls(bench, "idle time", loops):
            time.sleep(5)
        _pages(bench, loops)
        _cleanup_after_ttl(bench, loops, files)
        if layout == "one":
            _clear(bench, loops, "cli")
            _clear(bench, loops, "graphql")
    finally:
        by_digest.stop()
        by_tag.stop()
    if not OTHER_CHECKOUT:  # another checkout's failures are reported, not asserted
        everything = (0.0, time.monotonic())
        assert by_tag.window(*everything).failures == 0
        assert by_digest.window(*everything).failures == 0


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("database", DATABASES)
def test_data_scale(
    database: str,
    size: int,
    layout: str,
    tmp_path: Path,
    upstream: SeededReferenceRegistry,
    seeded_images: SeededImages,
    postgres: PostgresServer | None,
) -> None:
    if database == "postgres" and postgres is None:
        pytest.skip("PostgreSQL is not installed")
    cluster = postgres if database == "postgres" else None
    bench = _prepare(tmp_path, upstream.url, database, size, layout, cluster)
    SCALE_REPORT.runs.append(bench.run)
    started = time.monotonic()
    manifests, files = bench.insert()
    bench.run.add(
        "rows inserted (manifests + blobs)",
        manifests * 6,
        f"{manifests:,} + {manifests * 5:,} in {time.monotonic() - started:.0f} s",
    )
    assert files == manifests * 5 // FILE_EVERY or layout != "one"
    with bench.server:
        _measure(bench, seeded_images, layout, files)
