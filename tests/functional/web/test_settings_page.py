"""Group settings: Owners change them; secrets are never shown; bad input is explained."""

from __future__ import annotations

from app.dependency_proxy.models import GroupSetting, ImageTtlGroupPolicy, Upstream
from app.groups.models import Group
from tests.functional.web.conftest import Browser

PAGE = "/groups/acme/-/settings/packages_and_registries"
SECRET = "dckr_pat_super_secret_value"


async def test_owner_sees_the_current_settings(as_owner: Browser, group: Group) -> None:
    page = await as_owner.get(PAGE)
    assert page.status_code == 200
    assert "Enable Dependency Proxy" in page.text
    assert "Clear the Dependency Proxy cache automatically" in page.text
    assert "Docker Hub authentication" in page.text
    assert 'id="proxy-enabled" name="enabled" value="1" checked' in page.text
    assert (
        'name="ttl" type="number" min="1" max="36500" inputmode="numeric" value="90"' in page.text
    )


async def test_owner_disables_the_proxy_and_sets_revalidation(
    as_owner: Browser, group: Group
) -> None:
    response = await as_owner.post(PAGE, {"revalidation_interval": "300"})
    assert response.status_code == 303
    setting = await GroupSetting.get(group_id=group.id)
    assert setting.enabled is False and setting.revalidation_interval == 300
    page = await as_owner.get(PAGE)
    assert "Settings saved successfully." in page.text
    assert 'value="300"' in page.text
    response = await as_owner.post(PAGE, {"enabled": "1", "revalidation_interval": "0"})
    assert (await GroupSetting.get(group_id=group.id)).enabled is True


async def test_owner_turns_on_automatic_cleanup(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(PAGE + "/ttl", {"enabled": "1", "ttl": "14"}, page=PAGE)
    assert response.status_code == 303
    policy = await ImageTtlGroupPolicy.get(group_id=group.id)
    assert policy.enabled is True and policy.ttl == 14


async def test_bad_numbers_keep_the_input_and_say_why(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(PAGE + "/ttl", {"enabled": "1", "ttl": "0"}, page=PAGE)
    assert response.status_code == 400
    assert "Days must be between 1 and 36500." in response.text
    assert 'value="0"' in response.text
    response = await as_owner.post(PAGE, {"enabled": "1", "revalidation_interval": "soon"})
    assert response.status_code == 400
    assert "Revalidation interval must be a whole number." in response.text
    assert 'value="soon"' in response.text


async def test_secret_is_never_rendered_back(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(
        PAGE + "/credentials", {"identity": "bot", "secret": SECRET}, page=PAGE
    )
    assert response.status_code == 303
    page = await as_owner.get(PAGE)
    assert SECRET not in page.text
    assert 'value="bot"' in page.text
    assert "A secret is <strong>set</strong>" in page.text
    assert 'placeholder="*****"' in page.text


async def test_identity_without_secret_is_explained_without_echoing(
    as_owner: Browser, group: Group
) -> None:
    response = await as_owner.post(PAGE + "/credentials", {"identity": "bot"}, page=PAGE)
    assert response.status_code == 400
    assert "Enter the secret" in response.text
    assert 'value="bot"' in response.text


async def test_too_long_secret_error_does_not_echo_it(as_owner: Browser, group: Group) -> None:
    long_secret = "s" * 300
    response = await as_owner.post(
        PAGE + "/credentials", {"identity": "bot", "secret": long_secret}, page=PAGE
    )
    assert response.status_code == 400
    assert long_secret not in response.text


async def test_owner_removes_credentials(as_owner: Browser, group: Group) -> None:
    await as_owner.post(PAGE + "/credentials", {"identity": "bot", "secret": SECRET}, page=PAGE)
    response = await as_owner.post(PAGE + "/credentials", {"clear_credentials": "1"}, page=PAGE)
    assert response.status_code == 303
    hub = await Upstream.get(group_id=group.id)
    assert hub.identity_encrypted is None and hub.secret_encrypted is None
    page = await as_owner.get(PAGE)
    assert "No secret is set." in page.text


async def test_guest_cannot_see_or_change_settings(as_guest: Browser, group: Group) -> None:
    page = await as_guest.get(PAGE)
    assert page.status_code == 403
    token_page = "/groups/acme/-/dependency_proxy"
    for url, data in (
        (PAGE, {"revalidation_interval": "5"}),
        (PAGE + "/ttl", {"enabled": "1", "ttl": "5"}),
        (PAGE + "/credentials", {"identity": "x", "secret": "y"}),
    ):
        response = await as_guest.post(url, data, page=token_page)
        assert response.status_code == 403, url
    assert await GroupSetting.get_or_none(group_id=group.id) is None
