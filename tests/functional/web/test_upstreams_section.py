"""The upstream registries on a group's settings page: Owners add and remove them,
the password is never rendered, bad input is explained, Guests change nothing."""

from __future__ import annotations

from app.dependency_proxy.models import Upstream
from app.groups import records as groups
from app.groups.models import Group
from tests.functional.web.conftest import Browser

PAGE = "/groups/acme/-/settings/packages_and_registries"
PASSWORD = "ghp_do_not_show_me"


async def test_owner_adds_and_removes_an_upstream(as_owner: Browser, group: Group) -> None:
    page = await as_owner.get(PAGE)
    assert "Upstream registries" in page.text and "The default: Docker Hub only." in page.text

    response = await as_owner.post(
        PAGE + "/upstreams",
        {
            "url": "https://ghcr.io",
            "name": "ghcr",
            "username": "octo",
            "password": PASSWORD,
            "position": "1",
            "cache_validity_hours": "12",
        },
        page=PAGE,
    )
    assert response.status_code == 303
    page = await as_owner.get(PAGE)
    assert "Upstream ghcr added." in page.text
    assert PASSWORD not in page.text
    table = page.text.split('id="upstreams"', 1)[1].split("</table>", 1)[0]
    assert table.index("ghcr") < table.index("docker-hub")
    assert "octo" in table and "(password set)" in table and "12 h" in table

    response = await as_owner.post(PAGE + "/upstreams/remove", {"name": "ghcr"}, page=PAGE)
    assert response.status_code == 303
    assert not await Upstream.filter(group_id=group.id, name="ghcr").exists()


async def test_bad_input_is_explained_and_the_password_not_echoed(
    as_owner: Browser, group: Group
) -> None:
    response = await as_owner.post(
        PAGE + "/upstreams",
        {"url": "https://ghcr.io/v2/", "username": "octo", "password": PASSWORD},
        page=PAGE,
    )
    assert response.status_code == 400
    assert "no path" in response.text and PASSWORD not in response.text
    assert 'value="octo"' in response.text  # the rest of the form is kept
    response = await as_owner.post(
        PAGE + "/upstreams", {"url": "https://quay.io", "position": "x"}, page=PAGE
    )
    assert response.status_code == 400 and "Position must be a whole number" in response.text
    assert not await Upstream.filter(group_id=group.id).exists()


async def test_a_subgroup_shows_where_its_list_comes_from(as_owner: Browser, group: Group) -> None:
    await as_owner.post(PAGE + "/upstreams", {"url": "https://quay.io"}, page=PAGE)
    await groups.create_group("acme/sub")
    page = await as_owner.get("/groups/acme/sub/-/settings/packages_and_registries")
    assert 'id="upstreams-inherited"' in page.text and "quay.io" in page.text
    response = await as_owner.post(
        "/groups/acme/sub/-/settings/packages_and_registries/upstreams/remove",
        {"name": "quay.io"},
        page="/groups/acme/sub/-/settings/packages_and_registries",
    )
    assert response.status_code == 400 and "inherits its upstreams from acme" in response.text


async def test_guest_cannot_add_or_remove(as_guest: Browser, group: Group) -> None:
    token_page = "/groups/acme/-/dependency_proxy"
    for url, data in (
        (PAGE + "/upstreams", {"url": "https://evil.example"}),
        (PAGE + "/upstreams/remove", {"name": "docker-hub"}),
    ):
        response = await as_guest.post(url, data, page=token_page)
        assert response.status_code in (403, 404), url
    assert not await Upstream.filter(group_id=group.id).exists()
