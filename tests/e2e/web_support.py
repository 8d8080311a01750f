"""A live Dockyard for browser tests, and Playwright driving Debian's chromium.

`LiveDockyard` runs `dockyard serve` as a subprocess on 127.0.0.1 with its own
data folder; `cli()` runs the `dockyard` command against the same folder;
`seed_cache()` writes cache rows for a group straight into its SQLite file
with the app's own models (until the pull path can fill it for real).
The browser is never downloaded: Playwright launches /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKYARD = Path(sys.executable).parent / "dockyard"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"

_SEED_SCRIPT = """
import asyncio, json, sys
from datetime import timedelta
from app import clock, db
from app.config import load_settings
from app.dependency_proxy.models import Blob, Manifest
from app.groups.services import get_group

async def main(spec):
    settings = load_settings()
    await db.init_db(settings)
    try:
        group = await get_group(spec["group"])
        now = clock.now()
        for index, image in enumerate(spec["images"]):
            moment = now - timedelta(minutes=len(spec["images"]) - index)
            name, reference = image["name"], image["reference"]
            await Manifest.create(
                group=group, file_name=f"{name}:{reference}.json", image_name=name,
                reference=reference, digest=image["digest"],
                content_type="application/vnd.oci.image.manifest.v1+json",
                size=image["size"], content=b"{}", read_at=moment, checked_at=moment,
            )
            await Blob.create(group=group, digest=image["digest"], size=image["blob_size"],
                              read_at=moment)
    finally:
        await db.close_db()

asyncio.run(main(json.loads(sys.argv[1])))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveDockyard:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKYARD_DATA_DIR": str(self.data_dir),
            "DOCKYARD_HOST": "127.0.0.1",
            "DOCKYARD_PORT": str(self.port),
            "DOCKYARD_LOG_LEVEL": "warning",
            "DOCKYARD_CLEANUP_INTERVAL_SECONDS": "1",
        }

    def start(self) -> None:
        log = (self.data_dir.parent / "dockyard.log").open("wb")
        self.process = subprocess.Popen(
            [str(DOCKYARD), "serve"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("dockyard serve exited: see " + log.name)
            try:
                if httpx.get(f"{self.url}/-/readiness", timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("dockyard serve did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str, stdin: str | None = None) -> dict[str, Any]:
        done = subprocess.run(
            [str(DOCKYARD), *args, "--json"],
            env=self.env(),
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dockyard {' '.join(args)}: {done.stderr.decode().strip()}")
        result: dict[str, Any] = json.loads(done.stdout or b"{}")
        return result

    def user(self, username: str, *, admin: bool = False) -> None:
        extra = ["--admin"] if admin else []
        email = f"{username}@example.com"
        self.cli(
            "user", "create", username, "--email", email, "--password-stdin", *extra, stdin=PASSWORD
        )

    def seed_cache(self, group: str, images: list[dict[str, Any]]) -> None:
        """Cache rows for `group` (name, reference, digest, size, blob_size per image)."""
        spec = json.dumps({"group": group, "images": images})
        subprocess.run(
            [sys.executable, "-c", _SEED_SCRIPT, spec],
            env=self.env(),
            cwd=ROOT,
            check=True,
            timeout=60,
        )


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="module")
def dockyard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDockyard]:
    require_chromium()
    server = LiveDockyard(tmp_path_factory.mktemp("dockyard") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    sync_playwright = sync_api.sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any, dockyard: LiveDockyard) -> Iterator[Any]:
    """Factory for pages in fresh contexts (own cookies), with clipboard access."""
    contexts: list[Any] = []

    def make(*, mobile: bool = False) -> Any:
        options: dict[str, Any] = {"base_url": dockyard.url}
        if mobile:
            options.update(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
            )
        else:
            options.update(viewport={"width": 1280, "height": 860})
        context = browser.new_context(**options)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dockyard.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/users/sign_in")
    page.fill("#login", username)
    page.fill("#password", password)
    page.click("button[type=submit]:has-text('Sign in')")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
