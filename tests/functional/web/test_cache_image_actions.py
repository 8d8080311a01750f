"""The Dependency Proxy page's per-row actions: Delete (dialog, no-script page) and Pin."""

from __future__ import annotations

import re

from app import clock
from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.functional.web.conftest import Browser, MakeBrowser, make_user
from tests.support.image_rows import (
    cache_manifest,
    image_manifest,
    index_manifest,
    sha256,
)

PAGE = "/groups/acme/-/dependency_proxy"
DELETE = PAGE + "/images/delete"
PIN = PAGE + "/images/pin"


async def cached_app(group: Group) -> Manifest:
    """app:1.0 with its two blob rows (rows only: the page reads and changes rows)."""
    for layer in (b"config", b"layer"):
        await Blob.create(group_id=group.id, digest=sha256(layer), size=6, read_at=clock.now())
    return await cache_manifest(group, "app", "1.0", image_manifest(b"config", b"layer"))


async def test_owner_sees_the_row_actions_guest_does_not(
    as_owner: Browser, as_guest: Browser, group: Group
) -> None:
    row = await cached_app(group)
    owner_page = (await as_owner.get(PAGE)).text
    assert f'data-dialog="delete-image-{row.id}"' in owner_page
    assert f'<dialog id="delete-image-{row.id}"' in owner_page
    assert 'Delete <span class="mono">app:1.0</span> from the cache?' in owner_page
    assert 'class="button button-small pin-image"' in owner_page
    guest_page = (await as_guest.get(PAGE)).text
    assert "app:1.0" in guest_page
    assert "delete-image" not in guest_page and "pin-image" not in guest_page


async def test_owner_deletes_one_image_through_the_dialogs_form(
    as_owner: Browser, group: Group
) -> None:
    row = await cached_app(group)
    other = await cache_manifest(group, "tool", "2.0", image_manifest(b"config"))
    answer = await as_owner.post(DELETE, {"manifest_id": str(row.id)}, page=PAGE)
    assert answer.status_code == 303 and answer.headers["location"] == PAGE
    page = (await as_owner.get(PAGE)).text
    assert "Deleted app:1.0 from the cache. 1 blob(s) are scheduled for removal." in page
    assert await Manifest.filter(group_id=group.id).values_list("id", flat=True) == [other.id]
    statuses = dict(await Blob.filter(group_id=group.id).values_list("digest", "status"))
    assert statuses == {
        sha256(b"config"): CacheStatus.DEFAULT,  # tool:2.0 still names it
        sha256(b"layer"): CacheStatus.PENDING_DESTRUCTION,
    }


async def test_index_row_offers_its_platform_manifests_and_the_page_without_scripts(
    as_owner: Browser, group: Group
) -> None:
    amd64 = image_manifest(b"config", b"layer")
    index = await cache_manifest(group, "app", "1.0", index_manifest({"linux/amd64": amd64}))
    platform = await cache_manifest(group, "app", sha256(amd64), amd64)
    page = (await as_owner.get(PAGE)).text
    dialog = page[page.index(f'<dialog id="delete-image-{index.id}"') :]
    dialog = dialog[: dialog.index("</dialog>")]
    assert 'name="delete_platforms"' in dialog
    confirm = await as_owner.get(f"{DELETE}?id={index.id}")
    assert confirm.status_code == 200
    assert "Also delete its 1 cached platform manifest(s)" in confirm.text
    answer = await as_owner.post(
        DELETE, {"manifest_id": str(index.id), "delete_platforms": "1"}, page=PAGE
    )
    assert answer.status_code == 303
    assert not await Manifest.filter(id__in=[index.id, platform.id]).exists()


async def test_maintainer_and_guest_are_refused_and_nothing_changes(
    make_browser: MakeBrowser, as_guest: Browser, group: Group
) -> None:
    await groups.add_member(group, await make_user("max"), AccessLevel.MAINTAINER)
    maintainer = await make_browser()
    await maintainer.sign_in("max")
    row = await cached_app(group)
    for browser in (maintainer, as_guest):
        for url, data in (
            (DELETE, {"manifest_id": str(row.id)}),
            (PIN, {"manifest_id": str(row.id), "pinned": "1"}),
        ):
            answer = await browser.post(url, data, page=PAGE)
            assert answer.status_code == 403, url
        assert (await browser.get(f"{DELETE}?id={row.id}")).status_code == 403
    kept = await Manifest.get(id=row.id)
    assert kept.status == CacheStatus.DEFAULT and not kept.pinned


async def test_delete_without_csrf_token_is_refused(as_owner: Browser, group: Group) -> None:
    row = await cached_app(group)
    answer = await as_owner.http.post(DELETE, data={"manifest_id": str(row.id)})
    assert answer.status_code == 403
    assert await Manifest.filter(id=row.id).exists()


async def test_a_stale_or_foreign_row_says_it_is_gone(as_owner: Browser, group: Group) -> None:
    beta = await groups.create_group("beta")
    theirs = await cache_manifest(beta, "app", "1.0", image_manifest(b"config"))
    for value in (str(theirs.id), "999", "x"):
        answer = await as_owner.post(DELETE, {"manifest_id": value}, page=PAGE)
        assert answer.status_code == 303
        assert "That image is no longer in the cache." in (await as_owner.get(PAGE)).text
    assert await Manifest.filter(id=theirs.id).exists()


async def test_owner_pins_and_the_page_marks_it(
    as_owner: Browser, as_guest: Browser, group: Group
) -> None:
    row = await cached_app(group)
    answer = await as_owner.post(PIN, {"manifest_id": str(row.id), "pinned": "1"}, page=PAGE)
    assert answer.status_code == 303
    assert (await Manifest.get(id=row.id)).pinned
    page = (await as_owner.get(PAGE)).text
    assert "Pinned app:1.0: automatic cleanup will keep it." in page
    assert re.search(r'class="badge badge-success pinned"[^>]*>Pinned<', page)
    assert ">Unpin</button>" in page
    assert 'class="badge badge-success pinned"' in (await as_guest.get(PAGE)).text
    await as_owner.post(PIN, {"manifest_id": str(row.id), "pinned": "0"}, page=PAGE)
    assert not (await Manifest.get(id=row.id)).pinned
