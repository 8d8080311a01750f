"""The cache services the pages and GraphQL call: summary, listings, settings, clear."""

from __future__ import annotations

import pytest

from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy import credentials
from app.dependency_proxy.models import Blob, CacheStatus, GroupSetting, Upstream
from app.dependency_proxy.services.clear_cache import clear_cache
from app.dependency_proxy.services.group_cache import (
    get_cache_summary,
    list_blobs,
    list_manifests,
)
from app.dependency_proxy.services.update_settings import update_dependency_proxy_settings
from app.dependency_proxy.services.update_ttl_policy import update_image_ttl_policy
from app.dependency_proxy.statistics import CacheStatistics
from app.errors import InvalidInput, NotFound, PermissionDenied
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.support.cache_rows import add_blob, add_manifest

pytestmark = pytest.mark.usefixtures("database")


async def member(group: Group, name: str, level: AccessLevel) -> Principal:
    user = await accounts.create_user(name, f"{name}@example.com", f"{name}-password")
    await groups.add_member(group, user, level)
    return Principal(user=user)


async def test_summary_counts_sizes_and_statistics(settings: Settings) -> None:
    group = await groups.create_group("Acme")
    guest = await member(group, "gina", AccessLevel.GUEST)
    await add_manifest(group, "alpine", "latest", size=500)
    await add_blob(group, "a", size=1000)
    await add_blob(group, "b", size=2000)
    statistics = CacheStatistics()
    statistics.add(group.id, manifest_hits=3, manifest_misses=1, blob_hits=0, blob_misses=0)
    summary = await get_cache_summary(guest, group, statistics, settings)
    assert (summary.image_count, summary.blob_count, summary.total_size_bytes) == (1, 2, 3500)
    assert summary.hit_ratio == 0.75
    assert summary.image_prefix == "dockyard.test/acme/dependency_proxy/containers"
    assert summary.enabled and not summary.ttl_enabled and summary.ttl_days == 90
    assert summary.identity is None and not summary.can_administer
    assert summary.rate_limit_limit is None
    # Reading builds no rows (GitLab builds them lazily, on the first change).
    assert not await GroupSetting.filter(group_id=group.id).exists()


async def test_listing_pages_newest_first_in_both_directions() -> None:
    group = await groups.create_group("acme")
    owner = await member(group, "olga", AccessLevel.OWNER)
    made = [await add_manifest(group, "alpine", f"v{index}") for index in range(5)]
    first = await list_manifests(owner, group, first=2)
    assert [item.id for item in first.items] == [made[4].id, made[3].id]
    assert first.has_next_page and not first.has_previous_page
    second = await list_manifests(owner, group, first=2, after=first.end_cursor)
    assert [item.id for item in second.items] == [made[2].id, made[1].id]
    assert second.has_next_page and second.has_previous_page
    back = await list_manifests(owner, group, last=2, before=second.start_cursor)
    assert [item.id for item in back.items] == [made[4].id, made[3].id]
    assert back.has_next_page and not back.has_previous_page
    tail = await list_manifests(owner, group, last=1)
    assert [item.id for item in tail.items] == [made[0].id]
    assert tail.has_previous_page and not tail.has_next_page
    with pytest.raises(InvalidInput):
        await list_blobs(owner, group, after="not a cursor")


async def test_strangers_get_not_found_and_guests_cannot_change() -> None:
    group = await groups.create_group("acme")
    guest = await member(group, "gina", AccessLevel.GUEST)
    stranger = Principal(user=await accounts.create_user("sam", "sam@example.com", "sam-password"))
    with pytest.raises(NotFound):
        await list_manifests(stranger, group)
    with pytest.raises(NotFound):
        await clear_cache(stranger, group)
    with pytest.raises(PermissionDenied):
        await clear_cache(guest, group)
    with pytest.raises(PermissionDenied):
        await update_image_ttl_policy(guest, group, enabled=True)


async def test_settings_store_credentials_encrypted(settings: Settings) -> None:
    group = await groups.create_group("acme")
    owner = await member(group, "olga", AccessLevel.OWNER)
    with pytest.raises(InvalidInput):
        await update_dependency_proxy_settings(owner, group, settings, identity="only-me")
    setting = await update_dependency_proxy_settings(
        owner, group, settings, enabled=False, identity="hubuser", secret="hub-secret"
    )
    assert not setting.enabled
    # They are the credentials of the group's Docker Hub upstream, now its own list.
    hub = await Upstream.get(group_id=group.id)
    assert hub.url is None and hub.name == "docker-hub"
    assert "hub-secret" not in (hub.secret_encrypted or "")
    assert credentials.decrypt(settings.secret_key, hub.secret_encrypted or "") == "hub-secret"
    summary = await get_cache_summary(owner, group, None, settings)
    assert summary.identity == "hubuser" and summary.has_secret
    await update_dependency_proxy_settings(owner, group, settings, clear_credentials=True)
    await hub.refresh_from_db()
    assert hub.identity_encrypted is None and hub.secret_encrypted is None


async def test_ttl_policy_must_be_positive() -> None:
    group = await groups.create_group("acme")
    owner = await member(group, "olga", AccessLevel.OWNER)
    with pytest.raises(InvalidInput):
        await update_image_ttl_policy(owner, group, ttl=0)
    policy = await update_image_ttl_policy(owner, group, enabled=True, ttl=7)
    assert (policy.enabled, policy.ttl) == (True, 7)


async def test_clear_cache_marks_rows_once() -> None:
    group = await groups.create_group("acme")
    other = await groups.create_group("other")
    owner = await member(group, "olga", AccessLevel.OWNER)
    await add_manifest(group, "alpine", "latest")
    await add_blob(group, "a")
    await add_blob(other, "a")
    result = await clear_cache(owner, group)
    assert (result.manifests_marked, result.blobs_marked) == (1, 1)
    assert (await clear_cache(owner, group)).blobs_marked == 0
    assert await Blob.filter(group_id=other.id, status=CacheStatus.DEFAULT).count() == 1
