"""The first step of every pull: which group, may this principal pull, is the proxy on."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app import access_version
from app.access_version import VersionedCache
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.errors import ProxyDisabled
from app.dependency_proxy.group_settings import setting_for
from app.dependency_proxy.models import GroupSetting
from app.dependency_proxy.upstreams import DefaultCredentials, UpstreamEntry, upstreams_for
from app.errors import NotFound
from app.groups import policy
from app.groups.models import Group
from app.groups.records import find_group
from app.instance.services import InstanceSettings, get_instance_settings

log = logging.getLogger("dockyard.registry")


@dataclass(frozen=True)
class PullContext:
    group: Group
    setting: GroupSetting
    #: The group's upstreams in order (its own list, an ancestor's, or the default).
    upstreams: tuple[UpstreamEntry, ...]


# Granted pulls and the instance's settings, kept while the access version stands
# still (app/access_version.py): every row they were derived from (upstream lists
# and their credentials included) is watched by its triggers, so a revocation,
# block, removed membership, switched-off proxy or changed upstream moves the
# version and the next request decides again. Refusals are not kept.
_granted: VersionedCache[tuple[tuple[str, int], str], PullContext] = VersionedCache()
_instance: VersionedCache[None, InstanceSettings] = VersionedCache(size=1)


async def _instance_settings(settings: Settings, version: int) -> InstanceSettings:
    instance = _instance.get(None, version)
    if instance is None:
        instance = await get_instance_settings(settings)
        _instance.put(None, instance, version)
    return instance


def forget_instance_settings() -> None:
    """Drop what this process keeps (tests that change rows behind the triggers' back)."""
    _instance.clear()
    _granted.clear()


async def authorize_pull(principal: Principal, group_path: str, settings: Settings) -> PullContext:
    """Resolve the group and check access; raises NotFound (no such group or no
    access: the two are not told apart) or ProxyDisabled."""
    version = await access_version.current()
    # Kept only for a principal read at this very version: one read before a
    # change must not lend its rights to the decision stored after it.
    key = (principal.cache_key, group_path.lower()) if principal.cache_key else None
    keep = key is not None and principal.access_version == version
    if keep and key is not None:
        granted = _granted.get(key, version)
        if granted is not None:
            return granted
    pull = await _decide(principal, group_path, settings, version)
    if keep and key is not None:
        _granted.put(key, pull, version)
    return pull


async def _decide(
    principal: Principal, group_path: str, settings: Settings, version: int
) -> PullContext:
    group = await find_group(group_path)
    if group is None or not await policy.can_pull(principal, group):
        # The client learns only that it cannot pull here; the log says why.
        reason = "no such group" if group is None else "no pull access to it"
        log.info("pull refused for %s: group %r: %s", _who(principal), group_path, reason)
        raise NotFound(
            f"no group {group_path!r} you can pull from: check the path "
            "(pulling needs at least the Guest role in the group)"
        )
    instance = await _instance_settings(settings, version)
    if not instance.dependency_proxy_enabled:
        raise ProxyDisabled("the Dependency Proxy is disabled on this Dockyard instance")
    setting = await setting_for(group)
    if not setting.enabled:
        raise ProxyDisabled(f"the Dependency Proxy is disabled for group {group.full_path}")
    defaults = DefaultCredentials(
        instance.docker_hub_identity_encrypted, instance.docker_hub_secret_encrypted
    )
    return PullContext(
        group=group, setting=setting, upstreams=await upstreams_for(group, settings, defaults)
    )


def _who(principal: Principal) -> str:
    return f"{principal.kind.replace('_', ' ')} {principal.display_name!r}"
