"""The first hour, as a newcomer walks it: the README's own commands in order, on a
fresh data folder, with the real parts (`dockyard serve` as `make run` starts it,
Chromium, the Docker engine, curl) and the real upstream (the reference registry).

The docker commands and the GraphQL example are read out of README.md and
docs/graphql.md and run as written (only the example host is replaced), and the
pages are driven by the words the README uses for them, so neither file can
drift from what works.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import available_cpus
from tests.e2e.web_support import browser, require_chromium, sign_in
from tests.support.dockerd import DOCKER, Dockerd
from tests.support.dockyard_server import DOCKYARD, free_port
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import push_small_image
from tests.support.reference_registry import RegistryPusher
from tests.support.token_server import PUSH_USER

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # a fixture, used by name below

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_HOST = "dockyard.example.com"
ROOTS_PASSWORD = "root's own long passphrase"
ALICES_PASSWORD = "alice's long passphrase"


def section(markdown: str, heading: str) -> str:
    """The text under `heading`, up to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    return markdown.split(f"\n{heading}\n", 1)[1].split(f"\n{level} ", 1)[0]


def indented_commands(text: str, command: str) -> list[str]:
    """The lines of the indented code blocks in `text` that run `command`."""
    return [line.strip() for line in text.splitlines() if line.startswith(f"    {command} ")]


def fenced(text: str, language: str) -> str:
    return text.split(f"```{language}\n", 1)[1].split("```", 1)[0]


@dataclass
class Started:
    """A Dockyard started as `make run` starts it, in a fresh checkout's folder."""

    url: str
    host: str
    checkout: Path
    output: Path
    env: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.checkout / "data"  # the README's default, ./data

    def log(self) -> str:
        return self.output.read_text()


@pytest.fixture(scope="module")
def upstream(reference_registry_session: SeededReferenceRegistry) -> SeededReferenceRegistry:
    """Docker Hub as the README's examples expect it: bitnami/redis:7.2 too."""
    with RegistryPusher(reference_registry_session.url, *PUSH_USER) as pusher:
        push_small_image(pusher, "bitnami/redis", "7.2", seed=72)
    return reference_registry_session


@pytest.fixture(scope="module")
def make_run(
    dockerd: Dockerd, upstream: SeededReferenceRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Started]:
    """`make run`: `.venv/bin/dockyard serve` in a fresh checkout's folder, with no setting
    but a free port (5000 may be taken here) and the upstream (Docker Hub is not reachable)."""
    require_chromium()
    workdir = tmp_path_factory.mktemp("checkout")
    port = free_port()
    env = newcomer_environment(DOCKYARD_PORT=str(port), DOCKYARD_UPSTREAM_URL=upstream.url)
    output = workdir / "make-run.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [DOCKYARD, "serve"], cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    started = Started(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", workdir, output, env)
    try:
        deadline = time.monotonic() + 60
        while not _ready(started):
            assert process.poll() is None, started.log()
            assert time.monotonic() < deadline, started.log()
            time.sleep(0.1)
        yield started
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as in a terminal
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(started: Started) -> bool:
    try:
        return httpx.get(f"{started.url}/-/readiness", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def newcomer_environment(**settings: str) -> dict[str, str]:
    """This machine's environment without our own settings, plus `settings`."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")}
    return {**inherited, **settings}


def shell(script: str, checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run README lines with bash in the checkout folder, as a newcomer's shell would:
    `.venv/bin` is where `source .venv/bin/activate` puts it, and `docker` is Debian's."""
    tools = checkout / "tools"
    tools.mkdir(exist_ok=True)
    if not (tools / "docker").exists():
        (tools / "docker").symlink_to(DOCKER)
    path = f"{tools}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env={**env, "PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )


def new_page(browser: Any, started: Started) -> Any:
    context = browser.new_context(base_url=started.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    return context.new_page()


def test_from_make_run_to_a_cached_pull_and_a_cleared_cache(
    make_run: Started, dockerd: Dockerd, browser: Any, upstream: SeededReferenceRegistry
) -> None:
    started = make_run
    readme = (ROOT / "README.md").read_text()

    # 1. make run: where it listens, where clients are sent, root's password once.
    lines = started.log().splitlines()
    assert f"Dockyard listens on {started.host}" in lines
    assert any(line.startswith(f"External URL: {started.url} (") for line in lines)
    printed = re.search(r"created the admin user 'root' with password (\S+)$", started.log(), re.M)
    assert printed, started.log()
    password_file = started.data_dir / "initial_root_password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert printed.group(1) in password_file.read_text()

    # 2. Sign in as root; Dockyard asks for a new password first.
    root = new_page(browser, started)
    sign_in(root, "root", printed.group(1))
    root.wait_for_url(f"{started.url}/-/user_settings/password/edit")
    root.fill("#current-password", printed.group(1))
    root.fill("#new-password", ROOTS_PASSWORD)
    root.fill("#password-confirmation", ROOTS_PASSWORD)
    root.click("button:has-text('Save password')")
    root.wait_for_url(f"{started.url}/")
    password_file.unlink()  # "then delete data/initial_root_password"

    # 3. Groups → New group; on its page, New subgroup.
    root.click("a:has-text('New group')")
    root.fill("#path", "acme")
    root.click("button:has-text('Create group')")
    root.wait_for_url(f"{started.url}/groups/acme/-/dependency_proxy")
    root.click("a:has-text('New subgroup')")
    assert root.input_value("#parent") == "acme"
    root.fill("#path", "platform")
    root.click("button:has-text('Create group')")
    root.wait_for_url(f"{started.url}/groups/acme/platform/-/dependency_proxy")
    assert "Group acme/platform was created." in root.locator(".flash").inner_text()

    # 4. Admin → New user; acme's Members tab: add her.
    root.click("nav.topnav a:has-text('Admin')")
    root.fill("#new-username", "alice")
    root.fill("#new-email", "alice@example.com")
    root.fill("#new-password", ALICES_PASSWORD)
    root.click("button:has-text('Create user')")
    assert "User alice was created." in root.locator(".flash").inner_text()
    root.goto("/groups/acme")
    root.click("nav.tabs a:has-text('Members')")
    root.fill("#member-username", "alice")
    root.select_option("#member-role", "owner")
    root.click("button:has-text('Add member')")
    assert "alice is now Owner of acme." in root.locator(".flash").inner_text()

    # 5. Signed in as alice: Access tokens, "docker pull", create, copy.
    alice = new_page(browser, started)
    sign_in(alice, "alice", ALICES_PASSWORD)
    alice.wait_for_url(f"{started.url}/")
    tokens = {}
    for preset in ("docker pull", "scripts"):
        alice.click("nav.topnav a:has-text('Access tokens')")
        alice.fill("#token-name", preset.replace(" ", "-"))
        alice.click(f".presets a:has-text('{preset}')")
        alice.click("button:has-text('Create token')")
        tokens[preset] = alice.input_value("#new-token")

    # 6. The README's docker commands, as written, for 127.0.0.1:<port>.
    commands = indented_commands(section(readme, "## Pulling through Dockyard"), "docker")
    assert [command.split()[1] for command in commands] == ["login", "pull", "pull", "pull"]
    docker_env = {
        "DOCKER_HOST": dockerd.host,
        "DOCKER_CONFIG": str(started.checkout / "docker-config"),
        "DOCKYARD_TOKEN": tokens["docker pull"],
    }
    digest = ""
    for command in commands:
        command = command.replace(EXAMPLE_HOST, started.host).replace("sha256:<digest>", digest)
        ran = shell(command, started.checkout, {**started.env, **docker_env})
        assert ran.returncode == 0, f"{command}\n{ran.stdout}\n{ran.stderr}"
        if not digest and (
            found := re.search(r"^Digest: (sha256:[0-9a-f]{64})$", ran.stdout, re.M)
        ):
            digest = found.group(1)
    assert digest == upstream.seeded.alpine.digest
    prefix = f"{started.host}/acme/platform/dependency_proxy/containers"
    inspected = shell(
        f"docker image inspect --format '{{{{json .RepoDigests}}}}' {prefix}/alpine:3.19",
        started.checkout,
        {**started.env, **docker_env},
    )
    # (The session's engine may also know the image through another test's Dockyard.)
    assert f"{prefix}/alpine@{digest}" in json.loads(inspected.stdout)

    # 7. docs/graphql.md's queries, verbatim, with the "scripts" token.
    queries = section((ROOT / "docs" / "graphql.md").read_text(), "## Queries")
    curl = fenced(queries, "sh").replace("https://dockyard.example.com", started.url)
    answer = shell(curl, started.checkout, {**started.env, "DOCKYARD_TOKEN": tokens["scripts"]})
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == {
        "data": {
            "group": {
                "dependencyProxyImagePrefix": f"{started.host}/acme/dependency_proxy/containers",
                "dependencyProxyBlobCount": 0,  # the pulls went to acme/platform
                "dependencyProxyTotalSize": "0 Bytes",
            }
        }
    }
    details = httpx.post(
        f"{started.url}/api/graphql",
        headers={"Authorization": f"Bearer {tokens['scripts']}"},
        json={"query": fenced(queries, "graphql")},
        timeout=30,
    ).json()
    assert "errors" not in details, details
    group = details["data"]["group"]
    assert group["dependencyProxyImagePrefix"] == prefix
    names = {node["imageName"] for node in group["dependencyProxyManifests"]["nodes"]}
    assert names == {"alpine:3.19", "bitnami/redis:7.2"}

    # 8. The group's Dependency Proxy page lists them; Clear cache empties it.
    alice.goto("/groups/acme/platform")
    alice.click("nav.tabs a:has-text('Dependency Proxy')")
    shown = alice.locator(".image-row .image-name .mono").all_inner_texts()
    assert sorted(shown) == ["alpine:3.19", "bitnami/redis:7.2"]
    alice.click("a:has-text('Clear cache')")
    dialog = alice.locator("#clear-cache-dialog")
    assert f"from the upstream registry, {upstream.host}." in dialog.inner_text()
    alice.click("#confirm-clear-cache")
    flash = alice.locator(".flash").inner_text()
    assert "All items in the cache are scheduled for removal." in flash
    # The README's command for running the cleanup now (instead of within 5 minutes).
    cleanup = indented_commands(readme, "dockyard cache cleanup")
    assert cleanup, "the README no longer shows `dockyard cache cleanup`"
    ran = shell("dockyard cache cleanup", started.checkout, started.env)
    assert ran.returncode == 0, ran.stderr
    alice.reload()
    assert alice.locator("#empty-state").is_visible()
    assert alice.locator("#blob-summary").inner_text() == "Contains 0 blobs of images (0 B)"

    # And the log on the way: no warning a newcomer would wonder about.
    log = started.log()
    assert "Invalid HTTP request received" not in log
    # Once per worker process (`make run` starts one per CPU).
    probes = log.count("tried TLS on this plain-HTTP port and was answered 400")
    assert 1 <= probes <= available_cpus(), log
    assert " ERROR " not in log and "Traceback" not in log and " WARNING " not in log, log


def test_the_readmes_cli_quick_start_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("A quick start with the CLI", 1)[1].split("\n\n", 2)[1]
    script = "\n".join(line.strip() for line in block.splitlines())
    assert script.startswith("source .venv/bin/activate\n"), script
    # The checkout's virtualenv is the one running these tests.
    venv_bin = shlex.quote(str(Path(sys.executable).parent))
    script = script.replace("source .venv/bin/activate", f"source {venv_bin}/activate")
    # A fresh checkout folder whose ./data `make run` prepared (here: its migration).
    env = newcomer_environment()
    assert shell("DOCKYARD_DATA_DIR=./data dockyard migrate", tmp_path, env).returncode == 0
    ran = shell(script, tmp_path, env)
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"dypat-\S+", ran.stdout) and re.search(r"dydt-\S+", ran.stdout), ran.stdout
