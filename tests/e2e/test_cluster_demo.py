"""scripts/cluster-demo.sh starts PostgreSQL, SeaweedFS and two instances; skopeo pulls
one image through both (the second instance serves it from the shared bucket and
database without asking the upstream), and Ctrl-C stops and removes everything."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import require
from tests.e2e.test_pull_with_skopeo import assert_dir_holds
from tests.support.dockyard_server import free_port
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.postgres import postgres_bin
from tests.support.seaweedfs import WEED

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
    pytest.mark.skipif(WEED is None, reason="weed is not installed"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster-demo.sh"


def read_until(lines: queue.Queue[str | None], marker: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError("the demo did not come up:\n" + "".join(seen))


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_cluster_demo_serves_one_image_through_both_instances_and_stops_cleanly(
    reference_registry: SeededReferenceRegistry, seeded_images: SeededImages, tmp_path: Path
) -> None:
    skopeo = require("skopeo")
    image = seeded_images.alpine
    port_a, port_b = free_port(), free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_UPSTREAM_URL": reference_registry.url,
        "DEMO_IMAGE": f"{image.repository}:{image.tag}",
        "DEMO_PORT_A": str(port_a),
        "DEMO_PORT_B": str(port_b),
    }
    demo = subprocess.Popen(
        [str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        banner = "".join(read_until(lines, "Press Ctrl-C", timeout=240))
        token = re.search(r"token: (\S+)", banner)
        workdir = re.search(r"logs and data in (\S+)\)", banner)
        assert token and workdir, banner
        pulls = re.findall(r"skopeo copy (.*?) \\\n\s+(docker://\S+) dir:", banner)
        assert [source for _, source in pulls] == [
            f"docker://127.0.0.1:{port}/demo/dependency_proxy/containers/{image.repository}:{image.tag}"
            for port in (port_a, port_b)
        ]
        reference_registry.reset_counts()
        for number, (options, source) in enumerate(pulls):
            target = tmp_path / f"pull-{number}"
            result = subprocess.run(
                [skopeo, "copy", *options.split(), source, f"dir:{target}"],
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert result.returncode == 0, result.stderr
            assert_dir_holds(target, image)
            if number == 0:
                # The second instance finds the rows in PostgreSQL and the bytes in the bucket.
                reference_registry.reset_counts()
        assert reference_registry.blob_requests(method=None) == 0
    finally:
        if demo.poll() is None:
            os.kill(demo.pid, signal.SIGINT)  # what Ctrl-C sends the script
        try:
            status = demo.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    assert status == 130
    assert "Stopped." in "".join(read_until(lines, "Stopped.", timeout=5))
    assert not Path(workdir.group(1)).exists()
    assert refused(port_a) and refused(port_b)
