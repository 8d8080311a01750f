"""The first step of every pull: which group, may this principal pull, is the proxy on."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

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

# The instance switch is read at most this often per process (admins flip it
# rarely; the cached-manifest path should not pay a query for it).
INSTANCE_SETTINGS_TTL = 5.0
_instance_cache: tuple[float, InstanceSettings] | None = None


@dataclass(frozen=True)
class PullContext:
    group: Group
    setting: GroupSetting
    #: The group's upstreams in order (its own list, an ancestor's, or the default).
    upstreams: tuple[UpstreamEntry, ...]


async def _instance(settings: Settings) -> InstanceSettings:
    global _instance_cache
    now = time.monotonic()
    if _instance_cache is None or now - _instance_cache[0] > INSTANCE_SETTINGS_TTL:
        _instance_cache = (now, await get_instance_settings(settings))
    return _instance_cache[1]


def forget_instance_settings() -> None:
    """Drop the cached instance switch (after an admin changes it, and in tests)."""
    global _instance_cache
    _instance_cache = None


async def authorize_pull(principal: Principal, group_path: str, settings: Settings) -> PullContext:
    """Resolve the group and check access; raises NotFound (no such group or no
    access: the two are not told apart) or ProxyDisabled."""
    group = await find_group(group_path)
    if group is None or not await policy.can_pull(principal, group):
        # The client learns only that it cannot pull here; the log says why.
        reason = "no such group" if group is None else "no pull access to it"
        log.info("pull refused for %s: group %r: %s", _who(principal), group_path, reason)
        raise NotFound(
            f"no group {group_path!r} you can pull from: check the path "
            "(pulling needs at least the Guest role in the group)"
        )
    instance = await _instance(settings)
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
