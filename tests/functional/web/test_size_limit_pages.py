"""Size limits on the pages: an Owner sets the group's limit, an admin the instance's disk
budget; bad sizes are explained, non-Owners refused (issue 13 point 3)."""

from __future__ import annotations

from app.dependency_proxy.models import GroupSetting
from app.groups.models import Group
from app.instance.models import InstanceSetting
from tests.functional.web.conftest import Browser, make_user
from tests.functional.web.test_admin_page import MakeBrowser

PAGE = "/groups/acme/-/settings/packages_and_registries"
LIMIT = PAGE + "/size_limit"


async def test_owner_sets_and_removes_the_groups_size_limit(
    as_owner: Browser, group: Group
) -> None:
    page = await as_owner.get(PAGE)
    assert 'id="size-limit" name="size_limit"' in page.text and 'value=""' in page.text
    response = await as_owner.post(LIMIT, {"size_limit": "10GiB"}, page=PAGE)
    assert response.status_code == 303
    assert (await GroupSetting.get(group_id=group.id)).size_limit_bytes == 10 * 1024**3
    page = await as_owner.get(PAGE)
    assert 'value="10GiB"' in page.text
    assert "The cache holds <strong>0 B</strong> of <strong>10.00 GiB</strong>" in page.text

    response = await as_owner.post(LIMIT, {"size_limit": ""}, page=PAGE)
    assert response.status_code == 303
    assert (await GroupSetting.get(group_id=group.id)).size_limit_bytes is None


async def test_a_bad_size_keeps_the_input_and_says_why(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(LIMIT, {"size_limit": "a lot"}, page=PAGE)
    assert response.status_code == 400
    assert "Size limit: &#39;a lot&#39; is not a size" in response.text
    assert 'value="a lot"' in response.text
    response = await as_owner.post(LIMIT, {"size_limit": "10KiB"}, page=PAGE)
    assert response.status_code == 400
    assert "The size limit must be at least 1 MiB (or no limit)." in response.text


async def test_a_guest_cannot_set_the_limit(as_guest: Browser, group: Group) -> None:
    response = await as_guest.post(LIMIT, {"size_limit": "1GiB"}, page="/groups/acme")
    assert response.status_code in (403, 404)
    setting = await GroupSetting.get_or_none(group_id=group.id)
    assert setting is None or setting.size_limit_bytes is None


async def test_admin_sets_the_disk_budget_or_follows_the_setting(
    make_browser: MakeBrowser, group: Group
) -> None:
    await make_user("ada", admin=True)
    admin = await make_browser()
    await admin.sign_in("ada")
    page = await admin.get("/admin")
    assert 'placeholder="none (DOCKYARD_DISK_BUDGET)"' in page.text
    assert "The cache holds <strong>0 B</strong> (no budget)" in page.text
    assert "free" in page.text

    form = {"dependency_proxy_enabled": "1", "registry_token_expire_minutes": "15"}
    response = await admin.post("/admin/settings", {**form, "disk_budget": "50GiB"}, page="/admin")
    assert response.status_code == 303
    assert (await InstanceSetting.get(id=1)).disk_budget_bytes == 50 * 1024**3
    page = await admin.get("/admin")
    assert 'value="50GiB"' in page.text and "of a <strong>50.00 GiB</strong> budget" in page.text

    await admin.post("/admin/settings", {**form, "disk_budget": "none"}, page="/admin")
    assert (await InstanceSetting.get(id=1)).disk_budget_bytes == 0
    await admin.post("/admin/settings", {**form, "disk_budget": ""}, page="/admin")
    assert (await InstanceSetting.get(id=1)).disk_budget_bytes is None

    response = await admin.post("/admin/settings", {**form, "disk_budget": "-3GB"}, page="/admin")
    assert response.status_code == 400
    assert "Disk budget: &#39;-3GB&#39; is not a size" in response.text
