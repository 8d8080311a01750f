"""Pre-warm from the Dependency Proxy page, in Chromium: the Owner's form starts a job,
the page follows its progress without reloading until it is done; without
scripts, a reload shows the same (issue 13 point 2)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.web_support import PASSWORD, browser, dockyard, new_page, screenshot, sign_in
from tests.support.dockyard_server import DockyardServer
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e
__all__ = ["browser", "dockyard", "new_page"]  # fixtures used by name below

GROUP = "acme"
PAGE = f"/groups/{GROUP}/-/dependency_proxy"


@pytest.fixture(scope="module")
def members(dockyard: DockyardServer) -> None:
    dockyard.user("olivia", PASSWORD)
    dockyard.user("gus", PASSWORD)
    dockyard.cli("group", "create", GROUP)
    dockyard.cli("member", "add", GROUP, "olivia", "--role", "owner")
    dockyard.cli("member", "add", GROUP, "gus", "--role", "guest")


def test_owner_warms_from_the_form_and_watches_it_finish(
    members: None, new_page: Any, seeded_images: SeededImages
) -> None:
    image = seeded_images.many_layers
    page = new_page()
    sign_in(page, "olivia")
    page.goto(PAGE)
    page.fill("#warm-images", "many-layers\nno-such-image:1")
    page.click("#warm-submit")
    assert "queued: 2 image(s)" in page.locator(".flash").inner_text()
    job = page.locator(".warm-job").first
    assert job.get_attribute("data-state") in ("queued", "running")
    page.evaluate("window.stayedOnThePage = true")

    page.wait_for_selector(".warm-job[data-state=failed]", timeout=90_000)

    # The script updated the page in place: it was never reloaded.
    assert page.evaluate("window.stayedOnThePage") is True
    lines = job.locator(".warm-image")
    total = sum(blob.size for blob in image.blobs)
    warmed = lines.nth(0)
    count = len(image.blobs)
    assert f"done, {count}/{count} layers" in warmed.inner_text()
    bar = warmed.locator("progress")
    assert bar.evaluate("bar => [bar.value, bar.max]") == [total, total]
    failed = lines.nth(1).inner_text()
    assert "no-such-image:1" in failed and "failed" in failed and "does not exist" in failed
    assert job.locator(".warm-state").inner_text() == "failed"
    page.locator("#warm").scroll_into_view_if_needed()
    screenshot(page, "warm-progress", full_page=False)


def test_bad_input_is_told_on_the_page_and_guests_get_no_form(members: None, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto(PAGE)
    page.fill("#warm-images", "ghcr.io/owner/tool:1")
    page.click("#warm-submit")
    assert "has no upstream for ghcr.io" in page.locator(".flash").inner_text()

    guest = new_page()
    sign_in(guest, "gus")
    guest.goto(PAGE)
    assert guest.locator("#warm-form").count() == 0
    assert guest.locator(".warm-job").count() >= 1  # readers follow the jobs


def test_without_scripts_a_reload_shows_the_progress(
    members: None, browser: Any, dockyard: DockyardServer, seeded_images: SeededImages
) -> None:
    count = len(seeded_images.alpine.blobs)
    context = browser.new_context(base_url=dockyard.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "olivia")
        page.goto(PAGE)
        page.fill("#warm-images", "alpine:3.19")
        page.click("#warm-submit")
        assert page.locator("text=Reload the page to follow a running job.").is_visible()
        for _ in range(60):
            state = page.locator(".warm-job").first.get_attribute("data-state")
            if state == "done":
                break
            page.wait_for_timeout(1000)
            page.reload()
        assert f"done, {count}/{count} layers" in page.locator(".warm-job").first.inner_text()
    finally:
        context.close()
