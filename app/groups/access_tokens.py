"""Group access tokens (GitLab 16+), on behalf of a principal (Owners): create, list, revoke.

As on GitLab, a group access token is the personal access token of a bot user
who is a member of that group, with the token's role: the policy that governs
people governs it, so it reaches its group and the group's subgroups and
nothing else (a bot can be added to no other group, and never signs in). Its
secret starts with `dygat-`, is shown once and stored as a SHA-256 digest.
Revoking it revokes the token and blocks its bot at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from tortoise.transactions import in_transaction

from app.accounts import records as accounts
from app.accounts import token_lifetime
from app.accounts.models import PersonalAccessToken, UserState, UserType
from app.accounts.principal import Principal
from app.accounts.secrets import GROUP_ACCESS_TOKEN_PREFIX
from app.errors import AlreadyExists, InvalidInput, PermissionDenied
from app.groups import policy, records
from app.groups.models import AccessLevel, Group, Membership
from app.pagination import Page, paginate


@dataclass(frozen=True)
class GroupAccessToken:
    """A group access token as Owners see it (never its secret)."""

    token: PersonalAccessToken
    access_level: AccessLevel

    @property
    def id(self) -> int:
        return self.token.id

    @property
    def bot_username(self) -> str:
        return self.token.user.username


@dataclass(frozen=True)
class CreatedGroupAccessToken:
    """A freshly created token: `secret` is shown once and never stored."""

    secret: str
    group_access_token: GroupAccessToken


def _tokens_of(group: Group) -> Any:
    return PersonalAccessToken.filter(
        user__user_type=UserType.GROUP_BOT, user__memberships__group_id=group.id
    )


async def create_group_access_token(
    principal: Principal,
    group: Group,
    name: str,
    role: str | AccessLevel,
    scopes: str | list[str],
    expires_at: date | None = None,
) -> CreatedGroupAccessToken:
    """A new token acting as a bot member of `group` with `role` (not above the
    creator's own); the instance's maximum lifetime applies."""
    await policy.require_administer(principal, group, "manage its access tokens")
    if principal.is_bot:  # as on GitLab: a token cannot breed tokens that outlive it
        raise PermissionDenied("a group access token cannot create access tokens")
    level = role if isinstance(role, AccessLevel) else records.parse_role(role)
    if not principal.is_admin:
        own = await policy.access_level(principal.user, group)
        if own is None or level > own:
            raise InvalidInput("a token's role cannot be above your own")
    name = name.strip()
    if not name:
        raise InvalidInput("token name can't be blank")
    if await _tokens_of(group).filter(name=name, revoked_at=None).exists():
        raise AlreadyExists(f"{group.full_path} already has an active access token named {name!r}")
    expiry = await token_lifetime.allowed_expiry(expires_at)
    accounts.parse_scopes(scopes, accounts.ALL_SCOPES)  # refuse bad input before creating a bot
    accounts.check_expiry(expiry)
    async with in_transaction():
        bot = await accounts.create_bot_user(
            f"group_{group.id}_bot_{secrets.token_hex(8)}", f"{name} ({group.full_path})"
        )
        await Membership.create(group=group, user=bot, access_level=level)
        created = await accounts.create_personal_access_token(
            bot, name, scopes, expiry, prefix=GROUP_ACCESS_TOKEN_PREFIX
        )
    token = created.personal_access_token
    token.user = bot
    return CreatedGroupAccessToken(created.secret, GroupAccessToken(token, level))


async def group_access_tokens_page(
    principal: Principal, group: Group, **page: Any
) -> Page[GroupAccessToken]:
    """The group's access tokens, newest first, revoked ones included, with last use."""
    await policy.require_administer(principal, group, "see its access tokens")
    found = await paginate(_tokens_of(group).select_related("user"), **page)
    levels = dict(
        await Membership.filter(
            group_id=group.id, user_id__in=[token.user.id for token in found.items]
        ).values_list("user_id", "access_level")
    )
    items = [
        GroupAccessToken(token, AccessLevel(levels.get(token.user.id, AccessLevel.GUEST)))
        for token in found.items
    ]
    return Page(items, found.has_next_page, found.has_previous_page)


async def list_group_access_tokens(principal: Principal, group: Group) -> list[GroupAccessToken]:
    """Every access token of the group, newest first (the command line's list)."""
    tokens: list[GroupAccessToken] = []
    after: str | None = None
    while True:
        page = await group_access_tokens_page(principal, group, first=100, after=after)
        tokens += page.items
        if not page.has_next_page or not page.items:
            return tokens
        after = page.end_cursor


async def revoke_group_access_token(
    principal: Principal, group: Group, name: str | None = None, *, token_id: int | None = None
) -> GroupAccessToken:
    """Revoke the token (by name or id) and block its bot: it stops working at once."""
    await policy.require_administer(principal, group, "manage its access tokens")
    if token_id is None and not name:
        raise InvalidInput("give the token's id or its name")
    query = _tokens_of(group).filter(revoked_at=None).select_related("user")
    token = await (query.filter(id=token_id) if token_id is not None else query.filter(name=name))
    if not token:
        # Told to an Owner of the group: a mistake to report, not a secret to keep.
        raise InvalidInput(f"{group.full_path} has no active access token {name or token_id!r}")
    found: PersonalAccessToken = token[0]
    level = await Membership.filter(group_id=group.id, user_id=found.user.id).first()
    async with in_transaction():
        await accounts.revoke_personal_access_token(found.user, found.name)
        await accounts.set_state(found.user, UserState.BLOCKED)
    await found.refresh_from_db(fields=["revoked_at"])
    return GroupAccessToken(found, AccessLevel(level.access_level if level else AccessLevel.GUEST))
