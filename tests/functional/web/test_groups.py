"""Your groups, group creation, the group overview, 404s and escaping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.accounts.models import User
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.functional.web.conftest import Browser, make_group, make_user

MakeBrowser = Callable[[], Awaitable[Browser]]


async def test_dashboard_lists_groups_with_role_and_inherited_ones(
    as_guest: Browser, group: Group, guest: User
) -> None:
    await groups.create_group("acme/platform", name="Platform")
    await make_group("other", {})
    page = await as_guest.get("/")
    assert page.status_code == 200
    assert "/groups/acme/-/dependency_proxy" in page.text
    assert "/groups/acme/platform/-/dependency_proxy" in page.text
    assert "inherited" in page.text and "Guest" in page.text
    assert "/groups/other/" not in page.text  # not a member


async def test_empty_dashboard_explains_what_to_do(make_browser: MakeBrowser) -> None:
    await make_user("newbie")
    browser = await make_browser()
    await browser.sign_in("newbie")
    page = await browser.get("/")
    assert "You are not a member of any group yet" in page.text


async def test_create_group_makes_the_creator_owner(as_owner: Browser, owner: User) -> None:
    response = await as_owner.post("/groups", {"path": "tools", "name": "Tools"}, page="/")
    assert response.status_code == 303
    assert response.headers["location"] == "/groups/tools/-/dependency_proxy"
    created = await groups.get_group("tools")
    members = await groups.list_members(created)
    assert [(item.user.username, item.access_level) for item in members] == [
        ("olivia", AccessLevel.OWNER)
    ]
    page = await as_owner.get("/groups/tools/-/dependency_proxy")
    assert "Group tools was created." in page.text


async def test_create_subgroup_of_an_owned_group(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post("/groups", {"parent": "acme", "path": "ci"}, page="/")
    assert response.status_code == 303
    assert await groups.find_group("acme/ci") is not None


async def test_guest_cannot_create_a_subgroup(as_guest: Browser, group: Group) -> None:
    response = await as_guest.post("/groups", {"parent": "acme", "path": "sneaky"}, page="/")
    assert response.status_code == 400
    assert "Only Owners of acme may create subgroups." in response.text
    assert await groups.find_group("acme/sneaky") is None


async def test_bad_group_path_keeps_the_input(as_owner: Browser) -> None:
    response = await as_owner.post("/groups", {"path": "-bad-", "name": "My name"}, page="/")
    assert response.status_code == 400
    assert "can contain only letters" in response.text
    assert 'value="-bad-"' in response.text and 'value="My name"' in response.text


async def test_taken_group_path_is_reported(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post("/groups", {"path": "acme"}, page="/")
    assert response.status_code == 400
    assert "already exists" in response.text


async def test_group_overview(as_guest: Browser, group: Group) -> None:
    page = await as_guest.get("/groups/acme")
    assert page.status_code == 200
    assert "Guest" in page.text
    assert "/groups/acme/-/dependency_proxy" in page.text


async def test_group_path_is_matched_regardless_of_case(as_guest: Browser, group: Group) -> None:
    response = await as_guest.get("/groups/ACME/-/dependency_proxy")
    assert response.status_code == 303
    assert response.headers["location"] == "/groups/acme/-/dependency_proxy"


async def test_non_member_gets_a_helpful_404(make_browser: MakeBrowser, group: Group) -> None:
    await make_user("stranger")
    browser = await make_browser()
    await browser.sign_in("stranger")
    for url in (
        "/groups/acme",
        "/groups/acme/-/dependency_proxy",
        "/groups/acme/-/group_members",
        "/groups/acme/-/settings/packages_and_registries",
        "/groups/missing/-/dependency_proxy",
    ):
        page = await browser.get(url)
        assert page.status_code == 404, url
        assert "Page not found" in page.text and "Go to your groups" in page.text


async def test_unknown_group_page_is_404(as_owner: Browser, group: Group) -> None:
    page = await as_owner.get("/groups/acme/-/no_such_page")
    assert page.status_code == 404
    assert "no_such_page" in page.text


async def test_group_name_is_escaped_everywhere(make_browser: MakeBrowser, owner: User) -> None:
    await groups.create_group("xss", name="<script>alert(1)</script>", owner=owner)
    browser = await make_browser()
    await browser.sign_in("olivia")
    for url in ("/", "/groups/xss", "/groups/xss/-/dependency_proxy"):
        page = await browser.get(url)
        assert "<script>alert(1)</script>" not in page.text, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, url


async def test_pages_are_not_cached_and_refuse_framing(as_owner: Browser, group: Group) -> None:
    page = await as_owner.get("/groups/acme/-/dependency_proxy")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_static_files_are_served(as_owner: Browser) -> None:
    for name, kind in (("dockyard.css", "text/css"), ("dockyard.js", "javascript")):
        response = await as_owner.get(f"/-/static/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]


async def test_owners_get_new_subgroup_with_the_parent_filled_in(
    as_owner: Browser, as_guest: Browser, group: Group
) -> None:
    link = '<a class="button button-small new-subgroup" href="/?parent=acme#new-group">'
    for page in ("", "/-/dependency_proxy", "/-/group_members"):
        assert link in (await as_owner.get(f"/groups/acme{page}")).text, page
        assert "New subgroup" not in (await as_guest.get(f"/groups/acme{page}")).text, page

    form = (await as_owner.get("/?parent=acme")).text
    assert '<option value="acme" selected>acme</option>' in form
    assert 'placeholder="my-team" value="" autofocus>' in form
    response = await as_owner.post(
        "/groups", {"parent": "acme", "path": "ci"}, page="/?parent=acme"
    )
    assert response.headers["location"] == "/groups/acme/ci/-/dependency_proxy"
    assert await groups.find_group("acme/ci") is not None


async def test_a_parent_one_may_not_use_is_not_offered(as_guest: Browser, group: Group) -> None:
    for parent in ("acme", "no-such-group", "<script>"):
        form = (await as_guest.get(f"/?parent={parent}")).text
        assert "selected>" not in form.split('id="parent"', 1)[1].split("</select>", 1)[0]
        assert "<script>" not in form and "no-such-group" not in form
