"""The instance-wide maximum lifetime of personal and group access tokens (GitLab's
"Limit the lifetime of access tokens"): none by default; once an administrator
sets it, every token created or rotated from then on must expire within it (one
without an expiry date gets the longest allowed). Tokens that exist keep theirs.
"""

from __future__ import annotations

from datetime import date, timedelta

from app import clock
from app.accounts.models import AccessTokenSetting
from app.accounts.policy import require_admin
from app.accounts.principal import Principal
from app.errors import InvalidInput

# GitLab's ceiling for the setting: 400 days.
MAX_LIFETIME_DAYS = 400


async def max_lifetime_days() -> int | None:
    row = await AccessTokenSetting.filter(id=1).first()
    return row.max_lifetime_days if row is not None else None


async def set_max_lifetime(principal: Principal, days: int | None) -> int | None:
    """Set (or, with None, remove) the maximum; administrators only."""
    require_admin(principal, "change the maximum lifetime of access tokens")
    if days is not None and not 1 <= days <= MAX_LIFETIME_DAYS:
        raise InvalidInput(
            f"the maximum token lifetime must be between 1 and {MAX_LIFETIME_DAYS} days"
        )
    row, _ = await AccessTokenSetting.get_or_create(id=1)
    row.max_lifetime_days = days
    await row.save(update_fields=["max_lifetime_days", "updated_at"])
    return days


async def allowed_expiry(expires_at: date | None, *, clamp: bool = False) -> date | None:
    """The expiry a new token gets: `expires_at` if the maximum allows it, the longest
    allowed when none was asked for; too far off is InvalidInput (or, with `clamp`,
    the longest allowed: a rotation keeping an expiry set before the maximum was)."""
    days = await max_lifetime_days()
    if days is None:
        return expires_at
    latest = clock.today() + timedelta(days=days)
    if expires_at is None or (clamp and expires_at > latest):
        return latest
    if expires_at > latest:
        raise InvalidInput(
            f"tokens must expire within {days} days on this instance: "
            f"choose an expiry date on or before {latest.isoformat()}"
        )
    return expires_at
