"""One cached image on the Dependency Proxy page, in Chromium: Pin/Unpin and Delete
through its confirmation dialog (with the index's platform checkbox)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.web_support import PASSWORD, browser, dockyard, new_page, pull, screenshot, sign_in
from tests.support.dockyard_server import DockyardServer
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e
__all__ = ["browser", "dockyard", "new_page"]  # fixtures used by name below

GROUP = "acme"
PAGE = f"/groups/{GROUP}/-/dependency_proxy"


@pytest.fixture(scope="module")
def filled(
    dockyard: DockyardServer, seeded_images: SeededImages, tmp_path_factory: pytest.TempPathFactory
) -> SeededImages:
    """olivia owns acme, gus is its Guest; alpine and busybox (an index, amd64) cached."""
    dockyard.user("olivia", PASSWORD)
    dockyard.user("gus", PASSWORD)
    dockyard.cli("group", "create", GROUP)
    dockyard.cli("member", "add", GROUP, "olivia", "--role", "owner")
    dockyard.cli("member", "add", GROUP, "gus", "--role", "guest")
    token = dockyard.cli("token", "create", "olivia", "--name", "skopeo", "--scopes", "api")
    creds = f"olivia:{token['token']}"
    target = tmp_path_factory.mktemp("pulls")
    pull(dockyard, creds, GROUP, "alpine:3.19", target / "alpine")
    pull(dockyard, creds, GROUP, "busybox:1.36", target / "busybox", "--override-arch", "amd64")
    return seeded_images


def row(page: Any, name: str) -> Any:
    return page.locator(".image-row:not(.part-of)", has_text=name).first


def test_guest_sees_no_row_actions(filled: SeededImages, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "gus")
    page.goto(PAGE)
    assert row(page, "alpine:3.19").is_visible()
    assert page.locator(".delete-image").count() == 0
    assert page.locator(".pin-image").count() == 0


def test_owner_pins_then_deletes_an_index_with_its_platform(
    filled: SeededImages, new_page: Any
) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto(PAGE)
    alpine = row(page, "alpine:3.19")
    alpine.locator(".pin-image").click()
    assert "Pinned alpine:3.19" in page.locator(".flash").inner_text()
    assert row(page, "alpine:3.19").locator(".badge.pinned").is_visible()

    busybox = row(page, "busybox:1.36")
    busybox.locator(".delete-image").click()
    dialog = busybox.locator("dialog")
    assert dialog.is_visible()
    assert "Delete busybox:1.36 from the cache?" in dialog.inner_text()
    checkbox = dialog.locator("input[name=delete_platforms]")
    assert checkbox.is_visible() and not checkbox.is_checked()
    screenshot(page, "delete-image-dialog", full_page=False)
    dialog.locator("button:has-text('Cancel')").click()
    assert not dialog.is_visible()
    assert page.url.endswith(PAGE)  # the link's fallback page was not followed

    busybox.locator(".delete-image").click()
    checkbox.check()
    dialog.locator(".confirm-delete-image").click()
    amd64 = filled.busybox.for_platform("amd64")
    flash = page.locator(".flash").inner_text()
    assert f"Deleted busybox:1.36, busybox@{amd64.digest} from the cache." in flash
    assert page.locator(".image-row", has_text="busybox").count() == 0
    assert row(page, "alpine:3.19").locator(".badge.pinned").is_visible()


def test_without_scripts_delete_is_a_confirmation_page(
    filled: SeededImages, browser: Any, dockyard: DockyardServer
) -> None:
    context = browser.new_context(base_url=dockyard.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "olivia")
        page.goto(PAGE)
        row(page, "alpine:3.19").locator(".delete-image").click()
        assert "/images/delete?id=" in page.url
        assert "Delete alpine:3.19 from the cache?" in page.locator("h1").inner_text()
        page.click("button:has-text('Delete image')")
        assert "Deleted alpine:3.19 from the cache." in page.locator(".flash").inner_text()
        assert page.locator(".image-row", has_text="alpine").count() == 0
    finally:
        context.close()
