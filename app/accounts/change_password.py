"""The password page's use case: the signed-in user changes their own password."""

from __future__ import annotations

from app.accounts import records as accounts
from app.accounts.authentication import PasswordCheck, verify_current_password
from app.accounts.models import User
from app.accounts.principal import Principal
from app.errors import InvalidInput, PermissionDenied


async def change_password(
    principal: Principal,
    current_password: str,
    new_password: str,
    confirmation: str,
    check: PasswordCheck,
) -> User:
    """Check the current password (throttled), apply the strength rules, set the new
    one and end every session of the user; the caller signs its browser in again.

    Raises TooManyAttempts, InvalidInput (wrong current password, weak or
    mismatched new one) or PermissionDenied (a token, not a person, is asking).
    """
    user = principal.user
    if user is None or principal.scopes is not None:
        raise PermissionDenied("only a signed-in person may change their password")
    if not current_password:
        raise InvalidInput("enter your current password")
    if not await verify_current_password(user, current_password, check):
        raise InvalidInput("the current password is wrong")
    if new_password != confirmation:
        raise InvalidInput("the new password and its confirmation do not match")
    if new_password == current_password:
        raise InvalidInput("the new password must differ from the current one")
    return await accounts.set_password(user, new_password)
