"""Default Docker Hub credentials on the admin area: admins set and remove them, the
secret is never rendered, the page lists the groups that rely on them, and only
admins reach it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.dependency_proxy import credentials
from app.dependency_proxy.models import Upstream
from app.groups import records as groups
from app.instance.models import InstanceSetting
from tests.conftest import TEST_SECRET
from tests.functional.web.conftest import Browser, make_user

PAGE = "/admin/dependency_proxy"
SECRET = "dckr_pat_instance_wide"


async def test_admin_sets_them_and_sees_who_relies_on_them(
    make_browser: Callable[..., Awaitable[Browser]],
) -> None:
    await make_user("ada", admin=True)
    await groups.create_group("alone")
    await groups.create_group("alone/child")
    own = await groups.create_group("own")
    # `own` sets its own Docker Hub credentials: it does not rely on the defaults.
    await Upstream.create(
        group_id=own.id,
        position=1,
        name="docker-hub",
        url=None,
        identity_encrypted=credentials.encrypt(TEST_SECRET, "own-user"),
        secret_encrypted=credentials.encrypt(TEST_SECRET, "own-secret"),
    )
    # `quayonly` has no Docker Hub upstream at all.
    quay = await groups.create_group("quayonly")
    await Upstream.create(group_id=quay.id, position=1, name="quay", url="https://quay.io")
    admin = await make_browser()
    await admin.sign_in("ada")

    page = await admin.get(PAGE)
    assert page.status_code == 200 and "No secret is set" in page.text
    relying = page.text.split('id="relying-groups"', 1)[1]
    assert ">alone<" in relying and ">alone/child<" in relying
    assert ">own<" not in relying and ">quayonly<" not in relying

    response = await admin.post(
        PAGE + "/credentials", {"identity": "hub-bot", "secret": SECRET}, page=PAGE
    )
    assert response.status_code == 303
    page = await admin.get(PAGE)
    assert "Default Docker Hub credentials saved." in page.text
    assert SECRET not in page.text and 'value="hub-bot"' in page.text
    row = await InstanceSetting.get(id=1)
    assert SECRET not in (row.docker_hub_secret_encrypted or "")
    assert credentials.decrypt(TEST_SECRET, row.docker_hub_secret_encrypted or "") == SECRET

    refused = await admin.post(PAGE + "/credentials", {"identity": "x", "secret": ""}, page=PAGE)
    assert refused.status_code == 400 and "together" in refused.text

    await admin.post(PAGE + "/credentials", {"clear_credentials": "1"}, page=PAGE)
    row = await InstanceSetting.get(id=1)
    assert row.docker_hub_identity_encrypted is None and row.docker_hub_secret_encrypted is None


async def test_only_admins_reach_it(
    as_owner: Browser, make_browser: Callable[..., Awaitable[Browser]]
) -> None:
    assert (await as_owner.get(PAGE)).status_code == 403
    response = await as_owner.post(
        PAGE + "/credentials", {"identity": "x", "secret": "y"}, page="/"
    )
    assert response.status_code == 403
    row = await InstanceSetting.get_or_none(id=1)
    assert row is None or row.docker_hub_secret_encrypted is None
