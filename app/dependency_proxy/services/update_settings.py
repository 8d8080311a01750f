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
from app.dependency_proxy.services.access import require_owner
from app.dependency_proxy.upstream_lists import set_docker_hub_credentials
from app.errors import InvalidInput
from app.groups.models import Group

CREDENTIAL_MAX_LENGTH = 255  # GitLab's limit on both columns
# A day: longer than that, a moved tag would stay stale for too long.
REVALIDATION_INTERVAL_MAX = 24 * 3600


def _check_credentials(identity: str | None, secret: str | None, clear: bool) -> None:
    given = (identity is not None, secret is not None)
    if given[0] != given[1]:
        raise InvalidInput("identity and secret must be given together")
    if clear and any(given):
        raise InvalidInput("give new credentials or clear them, not both")
    if identity is None or secret is None:
        return
    if bool(identity.strip()) != bool(secret):
        raise InvalidInput("identity and secret must both be set or both be blank")
    if len(identity) > CREDENTIAL_MAX_LENGTH or len(secret) > CREDENTIAL_MAX_LENGTH:
        limit = CREDENTIAL_MAX_LENGTH
        raise InvalidInput(f"identity and secret must be at most {limit} characters")


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
) -> GroupSetting:
    """Apply the given changes (None leaves a value as it is); blank credentials clear them."""
    await require_owner(principal, group)
    _check_credentials(identity, secret, clear_credentials)
    _check_interval(revalidation_interval)
    setting = await setting_for(group)
    changed: list[str] = []
    if enabled is not None:
        setting.enabled = enabled
        changed.append("enabled")
    if revalidation_interval is not None:
        setting.revalidation_interval = revalidation_interval
        changed.append("revalidation_interval")
    if identity is not None and secret is not None and identity.strip():
        await set_docker_hub_credentials(group, settings, identity.strip(), secret)
    elif clear_credentials or identity is not None:  # blank identity and secret: clear
        await set_docker_hub_credentials(group, settings, None, None)
    if changed:
        await setting.save(update_fields=[*changed, "updated_at"])
    return setting
