"""A group's Dependency Proxy setting and TTL policy rows, built lazily as GitLab does."""

from __future__ import annotations

from app.dependency_proxy import credentials
from app.dependency_proxy.models import GroupSetting, ImageTtlGroupPolicy
from app.dependency_proxy.upstream import UpstreamCredentials
from app.groups.models import Group


async def setting_for(group: Group) -> GroupSetting:
    setting = await GroupSetting.get_or_none(group_id=group.id)
    if setting is None:
        setting, _ = await GroupSetting.get_or_create(group_id=group.id)
    return setting


async def ttl_policy_for(group: Group) -> ImageTtlGroupPolicy:
    policy = await ImageTtlGroupPolicy.get_or_none(group_id=group.id)
    if policy is None:
        policy, _ = await ImageTtlGroupPolicy.get_or_create(group_id=group.id)
    return policy


def identity_of(setting: GroupSetting, secret_key: str) -> str | None:
    if not setting.identity_encrypted:
        return None
    return credentials.decrypt(secret_key, setting.identity_encrypted)


def upstream_credentials(setting: GroupSetting, secret_key: str) -> UpstreamCredentials | None:
    """The group's Docker Hub credentials, or None for anonymous pulls."""
    if not setting.identity_encrypted or not setting.secret_encrypted:
        return None
    identity = credentials.decrypt(secret_key, setting.identity_encrypted)
    secret = credentials.decrypt(secret_key, setting.secret_encrypted)
    if identity is None or secret is None:
        return None
    return UpstreamCredentials(
        username=identity,
        password=secret,
        fingerprint=credentials.fingerprint(secret_key, identity, secret),
    )
