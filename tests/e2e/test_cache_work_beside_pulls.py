"""Clearing and cleaning a large cache from the CLI beside a live server that keeps
pulling (and writing) for another group: every command succeeds, every pull answers,
and the totals the page shows are right at the end."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.support.bulk_rows import SqliteRows, write_files
from tests.support.dockyard_server import DOCKYARD, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

ROWS = 4_000  # manifests; five blobs each


class Pulls(threading.Thread):
    """Tag pulls (each a HEAD upstream and a write) and digest pulls, back to back."""

    def __init__(self, urls: list[str], headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.urls, self.headers = urls, headers
        self.statuses: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set():
                for url in self.urls:
                    self.statuses.append(client.get(url, headers=self.headers).status_code)


def test_cli_clear_and_cleanup_beside_a_busy_server(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    server = DockyardServer(
        tmp_path / "dockyard",
        reference_registry.url,
        env={"DOCKYARD_CLEANUP_INTERVAL_SECONDS": "86400"},
    )
    server.cli("migrate")
    owner = server.provision("olga", "big")
    puller = server.provision("pat", "other")
    big = server.cli("group", "list", "--search", "big")["groups"][0]["id"]
    SqliteRows(server.data_dir / "dockyard.sqlite3").insert_cache([big], ROWS, 1)
    files = write_files(server.data_dir, [big], ROWS, 1)
    alpine = seeded_images.alpine
    with server:
        token = server.registry_token(puller, "alpine")
        base = f"{server.url}/v2/other/dependency_proxy/containers/alpine/manifests"
        headers = {"Authorization": f"Bearer {token}", "Accept": alpine.media_type}
        pulls = Pulls([f"{base}/3.19", f"{base}/{alpine.digest}"], headers)
        pulls.start()
        try:
            time.sleep(0.5)
            for args in (("cache", "clear", "big"), ("cache", "cleanup")):
                result = subprocess.run(
                    [DOCKYARD, *args, "--json"],
                    env=server.env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert result.returncode == 0, result.stderr
                if args[1] == "cleanup":
                    assert f'"files_deleted": {files}' in result.stdout
                    assert f'"blobs_deleted": {ROWS * 5}' in result.stdout
        finally:
            pulls.stopping.set()
            pulls.join(timeout=60)
        assert pulls.statuses and set(pulls.statuses) == {200}, set(pulls.statuses)

        page = httpx.get(
            f"{server.url}/api/graphql",
            params={"query": '{ group(fullPath: "big") { dependencyProxyBlobCount } }'},
            headers={"Authorization": f"Bearer {owner.token}"},
            timeout=30,
        )
        assert page.json()["data"]["group"]["dependencyProxyBlobCount"] == 0
    recount = server.cli("cache", "recount")
    assert recount["corrected"] == [], recount
