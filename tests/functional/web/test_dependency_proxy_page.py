"""The Dependency Proxy page: prefix, listing, pagination, Clear cache and its permissions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from app import clock
from app.accounts.models import User
from app.dependency_proxy.models import CacheStatus, GroupSetting, Manifest
from app.dependency_proxy.rows import record_blob
from app.groups.models import AccessLevel, Group
from app.instance.models import InstanceSetting
from tests.functional.web.conftest import Browser, make_group, make_user

MakeBrowser = Callable[[], Awaitable[Browser]]
PAGE = "/groups/acme/-/dependency_proxy"
PREFIX = "dockyard.test/acme/dependency_proxy/containers"
DIGEST = "sha256:" + "ab" * 32


async def cache_image(group: Group, name: str, reference: str, *, size: int = 100) -> Manifest:
    now = clock.now()
    # Each image its own layer: a group holds one live row per blob digest.
    layer = "sha256:" + hashlib.sha256(f"{name}:{reference}".encode()).hexdigest()
    await record_blob(group.id, layer, size * 10)
    return await Manifest.create(
        group=group,
        file_name=f"{name}:{reference}.json",
        image_name=name,
        reference=reference,
        digest=DIGEST,
        content_type="application/vnd.oci.image.manifest.v1+json",
        size=size,
        image_size=size * 10,
        content=b"{}",
        read_at=now - timedelta(hours=2),
        checked_at=now,
    )


async def test_prefix_summary_and_images(as_guest: Browser, group: Group) -> None:
    await cache_image(group, "library/alpine", "3.20", size=1024)
    await cache_image(group, "library/nginx", DIGEST, size=2048)
    page = await as_guest.get(PAGE)
    assert page.status_code == 200
    assert f'value="{PREFIX}"' in page.text and "Copy prefix" in page.text
    assert "Contains 2 blobs of images (33.00 KiB)" in page.text
    # newest first, digest pulls with '@', tags with ':'
    nginx = page.text.index(f"library/nginx@{DIGEST}")
    assert nginx < page.text.index("library/alpine:3.20")
    assert f'data-copy-text="{PREFIX}/library/nginx@{DIGEST}"' in page.text
    assert f'data-copy-text="{PREFIX}/library/alpine:3.20"' in page.text
    assert 'Digest: <span class="mono">ababab' in page.text
    assert "<span>10.00 KiB</span>" in page.text  # the image's size, not the manifest's
    assert "Last pulled <time" in page.text and "2 hours ago" in page.text
    assert "Hit ratio" in page.text and "Upstream rate limit" in page.text


def image_rows(html: str) -> list[str]:
    """Each listed image as the page reads: its shown name, then what it is part of."""
    rows = re.findall(r'<li class="list-row image-row[^"]*">(.*?)</li>', html, re.S)
    texts = []
    for row in rows:
        name = re.search(r'<span class="mono strong" title="[^"]*">([^<]*)</span>', row)
        relation = re.search(r'<div class="small relation">(.*?)</div>', row, re.S)
        assert name, row
        shown = name.group(1)
        if relation:
            shown += " — " + re.sub(r"<[^>]+>", "", relation.group(1))
        texts.append(shown)
    return texts


async def test_a_digest_pull_of_a_tagged_image_is_shown_as_part_of_it(
    as_guest: Browser, group: Group
) -> None:
    await cache_image(group, "library/alpine", "3.19")
    await cache_image(group, "library/nginx", "sha256:" + "cd" * 32)
    await cache_image(group, "library/alpine", DIGEST)  # the same digest as alpine:3.19
    page = await as_guest.get(PAGE)
    assert image_rows(page.text) == [
        "library/nginx@sha256:cdcdcdcdcdcd… — pulled by digest",
        "library/alpine:3.19",
        "library/alpine@sha256:abababababab… — pulled by digest · the same image as "
        "library/alpine:3.19",
    ]
    # The whole reference is still what the copy button copies.
    assert f'data-copy-text="{PREFIX}/library/alpine@{DIGEST}"' in page.text


async def test_a_platform_manifest_is_shown_under_its_multi_platform_index(
    as_guest: Browser, group: Group
) -> None:
    arm64, amd64 = "sha256:" + "01" * 32, "sha256:" + "02" * 32
    index = await cache_image(group, "library/busybox", "1.36")
    index.image_size = None  # what a multi-platform index has
    index.digest = "sha256:" + "99" * 32
    index.content = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"digest": amd64, "platform": {"os": "linux", "architecture": "amd64"}},
                {
                    "digest": arm64,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
            ],
        }
    ).encode()
    await index.save()
    await cache_image(group, "library/alpine", "3.19")
    child = await cache_image(group, "library/busybox", arm64)  # as docker pulls it
    child.digest = arm64
    await child.save()
    page = await as_guest.get(PAGE)
    assert image_rows(page.text) == [
        "library/alpine:3.19",
        "library/busybox:1.36",
        "library/busybox@sha256:010101010101… — pulled by digest · linux/arm64/v8 of "
        "library/busybox:1.36",
    ]


async def test_twenty_images_per_page_with_next_and_previous(
    as_guest: Browser, group: Group
) -> None:
    for number in range(45):
        await cache_image(group, f"library/image{number:02d}", "latest")
    first = await as_guest.get(PAGE)
    assert first.text.count('class="list-row image-row') == 20
    assert "library/image44:latest" in first.text and "library/image25:latest" in first.text
    assert 'rel="prev"' not in first.text
    next_url = re.search(r'href="([^"]+)" rel="next"|rel="next" href="([^"]+)"', first.text)
    assert next_url is not None
    second = await as_guest.get(next_url.group(1) or next_url.group(2))
    assert "library/image24:latest" in second.text and "library/image05:latest" in second.text
    assert "library/image25:latest" not in second.text
    previous = re.search(r'rel="prev" href="([^"]+)"', second.text)
    assert previous is not None
    back = await as_guest.get(previous.group(1))
    assert "library/image44:latest" in back.text and "library/image24:latest" not in back.text


async def test_a_broken_cursor_starts_from_the_newest(as_guest: Browser, group: Group) -> None:
    await cache_image(group, "library/alpine", "3.20")
    page = await as_guest.get(PAGE + "?after=not-a-cursor")
    assert page.status_code == 200 and "library/alpine:3.20" in page.text


async def test_empty_state_has_real_examples(as_guest: Browser, group: Group) -> None:
    page = await as_guest.get(PAGE)
    assert "There are no images in the cache" in page.text
    assert f"docker pull {PREFIX}/alpine:latest" in page.text
    assert f"image: {PREFIX}/alpine:latest" in page.text


async def test_guest_sees_no_clear_cache_and_is_refused(as_guest: Browser, group: Group) -> None:
    await cache_image(group, "library/alpine", "3.20")
    page = await as_guest.get(PAGE)
    assert "Clear cache" not in page.text and "clear-cache-dialog" not in page.text
    response = await as_guest.post(PAGE + "/clear_cache", {}, page=PAGE)
    assert response.status_code == 403
    assert "Access denied" in response.text
    assert await Manifest.filter(status=CacheStatus.DEFAULT).count() == 1
    confirm = await as_guest.get(PAGE + "/clear_cache")
    assert confirm.status_code == 403


async def test_owner_clears_the_cache(as_owner: Browser, group: Group) -> None:
    await cache_image(group, "library/alpine", "3.20")
    await cache_image(group, "library/python", "3.12")
    page = await as_owner.get(PAGE)
    assert "Clear 2 image(s) from cache?" in page.text
    confirm = await as_owner.get(PAGE + "/clear_cache")  # the page without scripts
    assert confirm.status_code == 200 and "Clear 2 image(s) from cache?" in confirm.text
    # Where the images come from again: the configured upstream, not always Docker Hub.
    refill = "must pull an image or tag from the upstream registry, registry-1.docker.io."
    assert refill in page.text and refill in confirm.text
    assert "Docker Hub" not in page.text.split('id="clear-cache-dialog"', 1)[1]
    response = await as_owner.post(PAGE + "/clear_cache", {}, page=PAGE)
    assert response.status_code == 303 and response.headers["location"] == PAGE
    assert await Manifest.filter(status=CacheStatus.DEFAULT).count() == 0
    after = await as_owner.get(PAGE)
    assert "All items in the cache are scheduled for removal." in after.text
    assert after.text.count("Scheduled for deletion") == 2


async def test_clear_cache_without_csrf_token_is_refused(as_owner: Browser, group: Group) -> None:
    await cache_image(group, "library/alpine", "3.20")
    response = await as_owner.http.post(PAGE + "/clear_cache", data={})
    assert response.status_code == 403
    response = await as_owner.http.post(
        PAGE + "/clear_cache", data={"authenticity_token": "forged"}
    )
    assert response.status_code == 403
    assert await Manifest.filter(status=CacheStatus.DEFAULT).count() == 1


async def test_disabled_proxy_notice_links_owners_to_settings(
    as_owner: Browser, as_guest: Browser, group: Group
) -> None:
    await GroupSetting.create(group=group, enabled=False)
    owner_page = await as_owner.get(PAGE)
    assert "The Dependency Proxy is disabled for this group." in owner_page.text
    assert "Enable it in the group" in owner_page.text
    guest_page = await as_guest.get(PAGE)
    assert "Ask an Owner of the group to enable it." in guest_page.text
    assert "/-/settings/packages_and_registries" not in guest_page.text


async def test_instance_wide_switch_is_explained(as_guest: Browser, group: Group) -> None:
    await InstanceSetting.update_or_create(id=1, defaults={"dependency_proxy_enabled": False})
    page = await as_guest.get(PAGE)
    assert "turned off for this whole Dockyard instance" in page.text


async def test_admin_who_is_not_a_member_may_look(make_browser: MakeBrowser, group: Group) -> None:
    await make_user("root2", admin=True)
    browser = await make_browser()
    await browser.sign_in("root2")
    page = await browser.get(PAGE)
    assert page.status_code == 200 and "Dependency Proxy image prefix" in page.text


async def test_subgroup_member_cannot_see_the_parent(
    make_browser: MakeBrowser, owner: User
) -> None:
    dev = await make_user("dev")
    await make_group("acme", {owner: AccessLevel.OWNER})
    await make_group("acme/sub", {dev: AccessLevel.DEVELOPER})
    browser = await make_browser()
    await browser.sign_in("dev")
    assert (await browser.get("/groups/acme/sub/-/dependency_proxy")).status_code == 200
    assert (await browser.get(PAGE)).status_code == 404
