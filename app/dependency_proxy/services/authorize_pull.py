"""The first step of every pull: which group, may this principal pull, is the proxy on."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app import access_version
from app.access_version import VersionedCache
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.errors import ProxyDisabled
from app.dependency_proxy.group_settings import setting_for, upstream_credentials
from app.dependency_proxy.models import GroupSetting
from app.dependency_proxy.upstream import UpstreamCredentials
from app.errors import NotFound
from app.groups import policy
from app.groups.models import Group
from app.groups.records import find_group
from app.instance.services import get_instance_settings

log = logging.getLogger("dockyard.registry")


@dataclass(frozen=True)
class PullContext:
    group: Group
    setting: GroupSetting
    credentials: UpstreamCredentials | None


# Granted pulls and the instance switch, kept while the access version stands
# still (app/access_version.py): every row they were derived from is watched by
# its triggers, so a revocation, block, removed membership or switched-off proxy
# moves the version and the next request decides again. Refusals are not kept.
_granted: VersionedCache[tuple[tuple[str, int], str], PullContext] = VersionedCache()
_instance: VersionedCache[None, bool] = VersionedCache(size=1)


async def _instance_enabled(settings: Settings, version: int) -> bool:
    enabled = _instance.get(None, version)
    if enabled is None:
        enabled = (await get_instance_settings(settings)).dependency_proxy_enabled
        _instance.put(None, enabled, version)
    return enabled


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
    if not await _instance_enabled(settings, version):
        raise ProxyDisabled("the Dependency Proxy is disabled on this Dockyard instance")
    setting = await setting_for(group)
    if not setting.enabled:
        raise ProxyDisabled(f"the Dependency Proxy is disabled for group {group.full_path}")
    return PullContext(
        group=group,
        setting=setting,
        credentials=upstream_credentials(setting, settings.secret_key),
    )


def _who(principal: Principal) -> str:
    return f"{principal.kind.replace('_', ' ')} {principal.display_name!r}"
