"""Usage over time in Chromium: after real pulls (a miss, then a hit) the Dependency
Proxy page draws the last 24 hours and 30 days as SVG bars with the saved totals, and
`/admin/usage` shows the instance to administrators only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.web_support import (
    PASSWORD,
    SCREENSHOTS,
    browser,
    dockyard,
    new_page,
    pull,
    screenshot,
    sign_in,
)
from tests.support.dockyard_server import DockyardServer
from tests.support.images import SeededImages
from web.rendering import human_size

pytestmark = pytest.mark.e2e
__all__ = ["browser", "dockyard", "new_page"]  # fixtures used by name below

GROUP = "acme"
PAGE = f"/groups/{GROUP}/-/dependency_proxy"


@pytest.fixture(scope="module")
def pulled(
    dockyard: DockyardServer, seeded_images: SeededImages, tmp_path_factory: pytest.TempPathFactory
) -> int:
    """olivia owns acme (gus is its Guest), ada is an admin; alpine pulled twice through
    acme. The bytes of the image (manifest and blobs)."""
    dockyard.user("olivia", PASSWORD)
    dockyard.user("gus", PASSWORD)
    dockyard.user("ada", PASSWORD, admin=True)
    dockyard.cli("group", "create", GROUP)
    dockyard.cli("member", "add", GROUP, "olivia", "--role", "owner")
    dockyard.cli("member", "add", GROUP, "gus", "--role", "guest")
    token = dockyard.cli("token", "create", "olivia", "--name", "skopeo", "--scopes", "api")
    target = tmp_path_factory.mktemp("usage-pulls")
    for attempt in ("first", "second"):
        pull(dockyard, f"olivia:{token['token']}", GROUP, "alpine:3.19", target / attempt)
    image = seeded_images.alpine
    return image.size + sum(blob.size for blob in image.blobs)


def test_the_page_charts_the_pulls(pulled: int, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "gus")
    page.goto(PAGE)

    usage = page.locator("#usage")
    assert usage.is_visible()
    hourly = page.locator("#usage-hourly svg")
    assert hourly.is_visible() and page.locator("#usage-daily svg").is_visible()
    # One bar for this hour, half hits (below), half misses (above), in both charts.
    assert hourly.locator("rect.hits").count() == 1
    assert hourly.locator("rect.misses").count() == 1
    hits_box = hourly.locator("rect.hits").bounding_box()
    misses_box = hourly.locator("rect.misses").bounding_box()
    assert hits_box["height"] > 10 and misses_box["y"] < hits_box["y"]
    assert page.locator("#usage-daily svg rect.hits").count() == 1
    bar_title = hourly.locator("g.bar title").last.text_content()
    assert "2 pulls (1 hits, 1 misses)" in bar_title
    assert page.locator("#bytes-saved").inner_text() == human_size(pulled)
    assert page.locator("#docker-hub-pulls-saved").inner_text() == "1"
    assert "2 pulls: 1 hits, 1 misses" in page.locator("#usage-hourly figcaption").inner_text()
    usage.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    usage.screenshot(path=str(SCREENSHOTS / "usage-charts.png"))


def test_admins_see_the_instance_and_others_do_not(pulled: int, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "ada")
    page.goto("/admin/usage")
    assert page.locator("#groups-by-size tbody tr", has_text=GROUP).is_visible()
    pulls = page.locator("#images-by-pulls tbody tr").first
    assert "alpine" in pulls.inner_text() and "2" in pulls.inner_text()
    assert "alpine:3.19" in page.locator("#images-by-size").inner_text()
    assert page.locator("#disk-free").is_visible()
    screenshot(page, "admin-usage")

    guest = new_page()
    sign_in(guest, "gus")
    answer = guest.goto("/admin/usage")
    assert answer.status == 403
    assert page.locator("#disk-free").count() == 1 and guest.locator("#disk-free").count() == 0
