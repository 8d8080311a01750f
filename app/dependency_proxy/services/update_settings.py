"""Change a group's Dependency Proxy setting: enabled, Docker Hub credentials, revalidation.

Owner only. The identity and secret are the credentials of the group's Docker
Hub upstream (`upstream_lists.py`), stored encrypted (AES-GCM, key derived
from the instance secret); the secret is never returned by anything.
"""

from __future__ import annotations

from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.group_settings import setting_for
from app.dependency_proxy.models import GroupSetting
from app.dependency_proxy.upstream_lists import (
    clear_docker_hub_credentials,
    docker_hub_identity,
    set_docker_hub_credentials,
)
from app.errors import InvalidInput
from app.groups.models import Group
from app.groups.policy import require_administer

CREDENTIAL_MAX_LENGTH = 255  # GitLab's limit on both columns
# A day: longer than that, a moved tag would stay stale for too long.
REVALIDATION_INTERVAL_MAX = 24 * 3600


def _check_credentials(identity: str | None, secret: str | None, clear: bool) -> None:
    if clear and (identity is not None or secret is not None):
        raise InvalidInput("give new credentials or clear them, not both")
    too_long = [
        value for value in (identity, secret) if value and len(value) > CREDENTIAL_MAX_LENGTH
    ]
    if too_long:
        limit = CREDENTIAL_MAX_LENGTH
        raise InvalidInput(f"identity and secret must be at most {limit} characters")


async def _credentials_after(
    group: Group, settings: Settings, identity: str | None, secret: str | None
) -> tuple[bool, bool]:
    """(identity set, secret set) once the change is applied: GitLab's model keeps the
    stored one of the two when only the other is given."""
    stored_identity, stored_secret = await docker_hub_identity(group, settings)
    has_identity = bool(identity.strip()) if identity is not None else bool(stored_identity)
    has_secret = bool(secret) if secret is not None else stored_secret
    return has_identity, has_secret


# The smallest limit: below it a group could hold no image at all (a manifest alone is
# up to 4 MiB); the page, GraphQL and the CLI all go through this check.
SIZE_LIMIT_MIN = 1024 * 1024


def _check_size_limit(size_limit_bytes: int | None) -> None:
    if size_limit_bytes is not None and size_limit_bytes < SIZE_LIMIT_MIN:
        raise InvalidInput("the size limit must be at least 1 MiB (or no limit)")


def _check_interval(seconds: int | None) -> None:
    if seconds is not None and not 0 <= seconds <= REVALIDATION_INTERVAL_MAX:
        raise InvalidInput(
            f"revalidation interval must be between 0 and {REVALIDATION_INTERVAL_MAX} seconds"
        )


async def update_dependency_proxy_settings(
    principal: Principal,
    group: Group,
    settings: Settings,
    *,
    enabled: bool | None = None,
    identity: str | None = None,
    secret: str | None = None,
    revalidation_interval: int | None = None,
    clear_credentials: bool = False,
    size_limit_bytes: int | None = None,
    remove_size_limit: bool = False,
) -> GroupSetting:
    """Apply the given changes (None leaves a value as it is). As on GitLab, identity and
    secret may be changed one at a time while the other is stored; the two blank
    clear them, and so does `clear_credentials`. `size_limit_bytes` sets the group's
    cache limit (`eviction.py`), `remove_size_limit` removes it."""
    await require_administer(principal, group, "change its Dependency Proxy")
    _check_credentials(identity, secret, clear_credentials)
    _check_interval(revalidation_interval)
    _check_size_limit(size_limit_bytes)
    if remove_size_limit and size_limit_bytes is not None:
        raise InvalidInput("give a size limit or remove it, not both")
    setting = await setting_for(group)
    has_identity, has_secret = await _credentials_after(group, settings, identity, secret)
    if has_identity != has_secret and not clear_credentials:
        raise InvalidInput("identity and secret must be given together")
    changed: list[str] = []
    if enabled is not None:
        setting.enabled = enabled
        changed.append("enabled")
    if revalidation_interval is not None:
        setting.revalidation_interval = revalidation_interval
        changed.append("revalidation_interval")
    if size_limit_bytes is not None or remove_size_limit:
        setting.size_limit_bytes = size_limit_bytes
        changed.append("size_limit_bytes")
    if clear_credentials or (not has_identity and (identity is not None or secret is not None)):
        await clear_docker_hub_credentials(group)
    elif identity is not None or secret is not None:
        await set_docker_hub_credentials(
            group, settings, identity.strip() if identity is not None else None, secret
        )
    if changed:
        await setting.save(update_fields=[*changed, "updated_at"])
    return setting
