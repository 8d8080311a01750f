"""Change a group's image TTL policy (automatic cleanup of entries not read for `ttl` days)."""

from __future__ import annotations

from app.accounts.principal import Principal
from app.dependency_proxy.group_settings import ttl_policy_for
from app.dependency_proxy.models import ImageTtlGroupPolicy
from app.dependency_proxy.services.access import require_owner
from app.errors import InvalidInput
from app.groups.models import Group

# GitLab accepts any positive integer; a century keeps date arithmetic in range.
TTL_MAX_DAYS = 36500


async def update_image_ttl_policy(
    principal: Principal, group: Group, *, enabled: bool | None = None, ttl: int | None = None
) -> ImageTtlGroupPolicy:
    """Owner only; None leaves a value as it is."""
    await require_owner(principal, group)
    if ttl is not None and not 0 < ttl <= TTL_MAX_DAYS:
        raise InvalidInput(f"ttl must be between 1 and {TTL_MAX_DAYS} days")
    policy = await ttl_policy_for(group)
    changed: list[str] = []
    if enabled is not None:
        policy.enabled = enabled
        changed.append("enabled")
    if ttl is not None:
        policy.ttl = ttl
        changed.append("ttl")
    if changed:
        await policy.save(update_fields=[*changed, "updated_at"])
    return policy
