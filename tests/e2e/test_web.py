"""The web interface in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.web_support import (
    PASSWORD,
    browser,
    dockyard,
    new_page,
    pull,
    screenshot,
    sign_in,
)
from tests.support.dockyard_server import DockyardServer
from tests.support.images import Image, SeededImages
from web.rendering import human_size

pytestmark = pytest.mark.e2e
__all__ = ["browser", "dockyard", "new_page"]  # fixtures used by name below

GROUP = "acme/platform"


@dataclass(frozen=True)
class Row:
    """A cached image as the Dependency Proxy page lists it."""

    name: str  # image:tag or image@sha256:…, as pulled
    digest: str
    size: str  # as shown: the image's config + layers, or "Multi-platform index"
    relation: str | None = None  # what a digest row says it is

    @property
    def shown(self) -> str:
        """The name as the list shows it: a digest is cut after 12 hex digits."""
        image, at, digest = self.name.partition("@")
        return f"{image}@{digest[:19]}…" if at else self.name


def shown_size(image: Image) -> str:
    """What a pull of the image moves: its config and layers."""
    return human_size(sum(blob.size for blob in image.blobs))


@dataclass(frozen=True)
class World:
    server: DockyardServer
    rows: tuple[Row, ...]  # newest first
    blob_count: int
    blob_hits: int
    total_size: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def prefix(self) -> str:
        return self.server.prefix(GROUP)


@pytest.fixture(scope="module")
def world(
    dockyard: DockyardServer,
    seeded_images: SeededImages,
    tmp_path_factory: pytest.TempPathFactory,
) -> World:
    """Users and groups made with the CLI, as an operator would; a cache filled by real pulls."""
    dockyard.user("olivia", PASSWORD)
    dockyard.user("gus", PASSWORD)
    dockyard.user("ada", PASSWORD, admin=True)
    dockyard.cli("group", "create", "acme", "--name", "ACME")
    dockyard.cli("group", "create", "xss", "--name", "Evil <script>alert(1)</script>")
    dockyard.cli("group", "create", GROUP, "--name", "Platform")
    dockyard.cli("group", "create", "acme/empty", "--name", "Empty")
    dockyard.cli("member", "add", "acme", "olivia", "--role", "owner")
    dockyard.cli("member", "add", GROUP, "gus", "--role", "guest")
    dockyard.cli("member", "add", "xss", "ada", "--role", "owner")

    # olivia pulls three images through acme/platform's prefix, as a developer would.
    token = dockyard.cli("token", "create", "olivia", "--name", "skopeo", "--scopes", "api")
    creds = f"olivia:{token['token']}"
    target = tmp_path_factory.mktemp("pulls")
    alpine, busybox, nginx = seeded_images.alpine, seeded_images.busybox, seeded_images.nginx
    busybox_amd64 = busybox.for_platform("amd64")
    # alpine by digest first, then by tag (each reference has its own row, as on
    # GitLab): the page shows one image, the digest row under the tag row.
    pull(dockyard, creds, GROUP, f"alpine@{alpine.digest}", target / "alpine-by-digest")
    pull(dockyard, creds, GROUP, "alpine:3.19", target / "alpine")
    # An index: skopeo fetches it, then the amd64 child by digest.
    pull(dockyard, creds, GROUP, "busybox:1.36", target / "busybox", "--override-arch", "amd64")
    pull(dockyard, creds, GROUP, f"nginx@{nginx.digest}", target / "nginx")

    images = (alpine, busybox_amd64, nginx)
    blobs = {blob.digest: blob.size for image in images for blob in image.blobs}
    manifests = (alpine, alpine, busybox, busybox_amd64, nginx)
    return World(
        server=dockyard,
        # Newest first, each digest row under the tag row it belongs to.
        rows=(
            Row(f"nginx@{nginx.digest}", nginx.digest, shown_size(nginx), "pulled by digest"),
            Row("busybox:1.36", busybox.digest, "Multi-platform index"),
            Row(
                f"busybox@{busybox_amd64.digest}",
                busybox_amd64.digest,
                shown_size(busybox_amd64),
                "pulled by digest · linux/amd64 of busybox:1.36",
            ),
            Row("alpine:3.19", alpine.digest, shown_size(alpine)),
            Row(
                f"alpine@{alpine.digest}",
                alpine.digest,
                shown_size(alpine),
                "pulled by digest · the same image as alpine:3.19",
            ),
        ),
        blob_count=len(blobs),
        blob_hits=len(alpine.blobs),  # the tag pull found the digest pull's blobs
        total_size=sum(blobs.values()) + sum(manifest.size for manifest in manifests),
    )


def test_sign_in_with_a_bad_password_then_a_good_one(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia", "not the password")
    assert page.locator(".form-error").inner_text() == "Invalid login or password."
    assert page.input_value("#login") == "olivia"  # the form keeps what was typed
    screenshot(page, "sign-in")

    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(world.url + "/")
    assert page.locator(".whoami").inner_text().strip().endswith("olivia")
    assert page.locator(".group-row").count() == 3  # acme and its two subgroups
    screenshot(page, "groups")


def test_prefix_shown_and_copied(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto(f"/groups/{GROUP}/-/dependency_proxy")
    prefix = world.prefix
    assert page.input_value("#image-prefix") == prefix
    assert page.locator("#blob-summary").inner_text() == (
        f"Contains {world.blob_count} blobs of images ({human_size(world.total_size)})"
    )
    page.click("button:has-text('Copy prefix')")
    page.wait_for_function("document.querySelector('.copied') !== null")
    assert page.evaluate("navigator.clipboard.readText()") == prefix

    assert page.locator("h3:has-text('Cached images') .count").inner_text() == str(len(world.rows))
    rows = page.locator(".image-row")
    assert rows.count() == len(world.rows)
    for index, expected in enumerate(world.rows):  # newest first
        row = rows.nth(index)
        assert row.locator(".image-name .mono").inner_text() == expected.shown
        relation = row.locator(".relation")
        assert (relation.inner_text() if relation.count() else None) == expected.relation
        short = expected.digest.split(":", 1)[1][:7]
        meta = row.locator(".meta").inner_text()
        assert f"Digest: {short}" in meta
        assert expected.size in meta
        assert row.locator(".badge-warning").count() == 0  # not scheduled for deletion
    # 5 manifests and 9 blobs, each fetched once from upstream; alpine's blobs served twice.
    stats = page.locator(".stats").inner_text()
    assert f"{world.blob_hits} hits, {len(world.rows) + world.blob_count} misses" in stats
    screenshot(page, "dependency-proxy")

    nginx = world.rows[0]
    rows.nth(0).locator("button:has-text('Copy')").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{prefix}/{nginx.name}"
    rows.nth(len(world.rows) - 1).locator("button:has-text('Copy')").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{prefix}/{world.rows[-1].name}"


def test_empty_state_shows_the_real_prefix(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto("/groups/acme/empty/-/dependency_proxy")
    empty = page.locator("#empty-state")
    assert "There are no images in the cache" in empty.inner_text()
    assert f"image: {world.host}/acme/empty/dependency_proxy/containers/alpine:latest" in (
        page.locator("#ci-example").inner_text()
    )
    screenshot(page, "dependency-proxy-empty")


def test_group_name_is_escaped(world: World, new_page: Any) -> None:
    page = new_page()
    alerts: list[str] = []

    def dismiss(dialog: Any) -> None:
        alerts.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    sign_in(page, "ada")
    page.goto("/")
    page.goto("/groups/xss/-/dependency_proxy")
    assert "<script>alert(1)</script>" in page.locator("h1").inner_text()
    assert alerts == []


def test_settings_toggles_persist(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto("/groups/acme/empty/-/settings/packages_and_registries")
    assert page.is_checked("#proxy-enabled")
    page.locator("#proxy-settings .toggle").click()
    page.fill("#revalidation-interval", "600")
    page.locator("#proxy-settings button:has-text('Save changes')").click()
    assert "Settings saved successfully." in page.locator(".flash").inner_text()

    page.locator("#ttl-settings .toggle").click()
    page.fill("#ttl-days", "30")
    with page.expect_navigation():  # the form posts and reloads the page
        page.locator("#ttl-settings button:has-text('Save changes')").click()
    page.fill("#identity", "dockerhub-bot")
    page.fill("#secret", "dckr_pat_very_secret")
    with page.expect_navigation():  # the form posts and reloads the page
        page.locator("#credentials-settings button:has-text('Save changes')").click()

    page.reload()
    assert not page.is_checked("#proxy-enabled")
    assert page.input_value("#revalidation-interval") == "600"
    assert page.is_checked("#ttl-enabled")
    assert page.input_value("#ttl-days") == "30"
    assert page.input_value("#identity") == "dockerhub-bot"
    assert page.input_value("#secret") == ""
    assert "dckr_pat_very_secret" not in page.content()
    assert "set" in page.locator("#secret-state").inner_text()
    screenshot(page, "settings")

    page.goto("/groups/acme/empty/-/dependency_proxy")
    notice = page.locator(".notice-warning")
    assert "disabled for this group" in notice.inner_text()
    notice.locator("a").click()
    page.locator("#proxy-settings .toggle").click()
    with page.expect_navigation():
        page.locator("#proxy-settings button:has-text('Save changes')").click()
    page.reload()  # what the server stored, not the toggle's client-side state
    assert page.is_checked("#proxy-enabled")


def checked_scopes(page: Any) -> list[str]:
    boxes = page.locator("input[name=scopes]:checked")
    return [boxes.nth(index).get_attribute("value") for index in range(boxes.count())]


def test_personal_access_token_shown_once(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto("/-/user_settings/personal_access_tokens")
    page.fill("#token-name", "laptop")
    assert checked_scopes(page) == []  # nothing chosen for the user
    page.click("button:has-text('Create token')")
    assert page.locator(".form-error").inner_text() == "At least one scope is required."
    page.click(".presets a:has-text('scripts')")
    assert checked_scopes(page) == ["api"]
    page.click(".presets a:has-text('docker pull')")  # in place: the name typed stays
    assert checked_scopes(page) == ["read_registry", "write_registry"]
    assert page.input_value("#token-name") == "laptop"
    page.click("button:has-text('Create token')")
    secret = page.input_value("#new-token")
    assert secret.startswith("dypat-")
    login_line = page.input_value("#new-token-login")
    assert login_line == f"docker login {world.host} -u olivia --password-stdin"
    page.locator(".secret-once button:has-text('Copy token')").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "personal-access-tokens")

    # The token works for the registry's token endpoint...
    response = httpx.get(
        f"{world.url}/jwt/auth",
        params={"service": "dependency_proxy"},
        auth=("olivia", secret),
    )
    assert response.status_code == 200
    # ...and is never shown again.
    page.goto("/-/user_settings/personal_access_tokens")
    assert secret not in page.content()
    assert page.locator("td:has-text('laptop')").count() == 1


def test_guest_sees_no_clear_cache_and_is_refused_posting(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "gus")
    page.goto(f"/groups/{GROUP}/-/dependency_proxy")
    assert page.locator(".image-row").count() == len(world.rows)  # Guests see the cache
    assert page.locator("#clear-cache-button").count() == 0
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    # A hand-made form post, with a valid CSRF token, from the Guest's own session.
    status = page.evaluate(
        """async ([url, token]) => {
            const body = new URLSearchParams({authenticity_token: token});
            const response = await fetch(url, {method: "POST", body});
            return response.status;
        }""",
        [f"/groups/{GROUP}/-/dependency_proxy/clear_cache", token],
    )
    assert status == 403
    page.goto(f"/groups/{GROUP}/-/dependency_proxy/clear_cache")
    assert page.locator(".error-code").inner_text() == "403"
    screenshot(page, "forbidden")


def test_form_post_without_csrf_token_is_refused(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    post_without_token = """async (url) => {
        const response = await fetch(url, {method: "POST", body: new URLSearchParams()});
        return response.status;
    }"""
    status = page.evaluate(post_without_token, f"/groups/{GROUP}/-/dependency_proxy/clear_cache")
    assert status == 403
    page.goto(f"/groups/{GROUP}/-/dependency_proxy")
    assert page.locator(".image-row").count() == len(world.rows)  # nothing was cleared
    assert page.locator(".image-row.scheduled").count() == 0


def test_phone_layout(world: World, new_page: Any) -> None:
    page = new_page(mobile=True)
    sign_in(page, "olivia")
    page.goto(f"/groups/{GROUP}/-/dependency_proxy")
    assert page.locator(".image-row").count() == len(world.rows)  # long digest names too
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways on a phone
    screenshot(page, "dependency-proxy-phone")


def test_owner_clears_the_cache_through_the_dialog(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto(f"/groups/{GROUP}/-/dependency_proxy")
    page.click("#clear-cache-button")
    dialog = page.locator("#clear-cache-dialog")
    assert dialog.is_visible()
    text = dialog.inner_text()
    assert f"Clear {len(world.rows)} image(s) from cache?" in text
    assert f"({world.blob_count} blobs, {human_size(world.total_size)})" in text
    # The upstream here is the reference registry, not Docker Hub.
    upstream_host = world.server.env["DOCKYARD_UPSTREAM_URL"].removeprefix("http://")
    assert f"must pull an image or tag from the upstream registry, {upstream_host}." in text
    screenshot(page, "clear-cache-dialog", full_page=False)
    dialog.locator("button:has-text('Cancel')").click()
    assert not dialog.is_visible()

    page.click("#clear-cache-button")
    page.click("#confirm-clear-cache")
    assert (
        "All items in the cache are scheduled for removal." in page.locator(".flash").inner_text()
    )
    rows = page.locator(".image-row")
    if rows.count():
        assert rows.count() == page.locator(".image-row.scheduled").count()
    # The cleanup worker deletes marked rows within a few seconds (interval 1 s
    # here): manifests first, then blobs, so for a moment the page rightly shows
    # no images while blobs are still on their way out. Wait for both to be gone.
    emptied = "Contains 0 blobs of images (0 B)"
    for _ in range(40):
        if page.locator("#empty-state").count() and (
            page.locator("#blob-summary").inner_text() == emptied
        ):
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("#empty-state").is_visible()
    assert page.locator("#blob-summary").inner_text() == emptied


def test_members_page_and_deploy_token(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "olivia")
    page.goto(f"/groups/{GROUP}/-/group_members")
    assert "inherited" in page.locator("tr:has-text('olivia')").inner_text()
    page.fill("#deploy-name", "ci")
    page.click("button:has-text('Create deploy token')")
    secret = page.input_value("#deploy-token-secret")
    assert secret.startswith("dydt-")
    assert re.fullmatch(r"dockyard\+deploy-token-\d+", page.input_value("#deploy-token-username"))
    screenshot(page, "members")
    page.reload()
    assert secret not in page.content()


def test_admin_area(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, "ada")
    page.goto("/admin")
    assert page.locator("#groups tr:has-text('acme/platform')").count() == 1
    page.fill("#new-username", "newbie")
    page.fill("#new-email", "newbie@example.com")
    page.fill("#new-password", PASSWORD)
    page.click("button:has-text('Create user')")
    assert "User newbie was created." in page.locator(".flash").inner_text()
    screenshot(page, "admin")
