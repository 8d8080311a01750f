"""Change a group's image TTL policy (automatic cleanup of entries not read for `ttl` days)."""

from __future__ import annotations

from app.accounts.principal import Principal
from app.dependency_proxy.group_settings import ttl_policy_for
from app.dependency_proxy.models import ImageTtlGroupPolicy
from app.errors import InvalidInput
from app.groups.models import Group
from app.groups.policy import require_administer

# GitLab accepts any positive integer (up to GraphQL's Int); the cleanup reads anything
# beyond a century as "a century", which date arithmetic can still represent.
TTL_MAX_DAYS = 2**31 - 1


async def update_image_ttl_policy(
    principal: Principal, group: Group, *, enabled: bool | None = None, ttl: int | None = None
) -> ImageTtlGroupPolicy:
    """Owner only; None leaves a value as it is."""
    await require_administer(principal, group, "change its automatic cleanup")
    if ttl is not None and ttl <= 0:
        raise InvalidInput("ttl must be greater than 0")
    if ttl is not None and ttl > TTL_MAX_DAYS:
        raise InvalidInput(f"ttl must be at most {TTL_MAX_DAYS} days")
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
