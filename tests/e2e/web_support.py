"""Browser-test support: a live Dockyard in front of the real upstream, and chromium.

The server is `tests.support.dockyard_server.DockyardServer` (`dockyard serve`
as a subprocess) whose upstream is the session's seeded reference registry, so
a group's cache is filled by real pulls through the proxy. `pull()` does one
with skopeo. The browser is never downloaded: Playwright launches
/usr/bin/chromium.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import require
from tests.support.dockyard_server import DockyardServer
from tests.support.fixtures import SeededReferenceRegistry

ROOT = Path(__file__).resolve().parents[2]
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
# The README's pictures are refreshed with `make screenshots`; an ordinary test
# run takes the same shots into a scratch folder so it leaves the tree clean.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("DOCKYARD_UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "dockyard-screenshots"
)
PASSWORD = "correct horse battery staple"


def pull(
    server: DockyardServer, creds: str, group: str, reference: str, target: Path, *extra: str
) -> None:
    """`skopeo copy` one image through the group's proxy prefix into a dir: folder."""
    result = subprocess.run(
        [
            require("skopeo"),
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            *extra,
            f"docker://{server.prefix(group)}/{reference}",
            f"dir:{target}",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="module")
def dockyard(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    """A live Dockyard whose upstream is the seeded reference registry.

    The cleanup worker runs every second, so a cleared cache empties quickly.
    """
    require_chromium()
    server = DockyardServer(
        tmp_path_factory.mktemp("dockyard"),
        reference_registry_session.url,
        env={"DOCKYARD_CLEANUP_INTERVAL_SECONDS": "1"},
    )
    with server:
        yield server


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
def new_page(browser: Any, dockyard: DockyardServer) -> Iterator[Any]:
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


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save NAME.png into SCREENSHOTS (the viewport only for modal dialogs: their
    backdrop covers the viewport, not the whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
