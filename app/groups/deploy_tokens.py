"""A group's deploy tokens on behalf of a principal (Owners): create, list, revoke.

A deploy token pulls through the Dependency Proxy of its group and that group's
subgroups (both registry scopes needed), and nothing else. Its rows are kept by
`app.accounts.records` (it is a credential); who may manage them is decided here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.accounts import records as accounts
from app.accounts.models import DeployToken
from app.accounts.principal import Principal
from app.accounts.records import CreatedDeployToken
from app.groups import policy
from app.groups.models import Group
from app.pagination import Page, paginate

__all__ = [
    "CreatedDeployToken",
    "create_deploy_token",
    "deploy_tokens_page",
    "list_deploy_tokens",
    "revoke_deploy_token",
]


async def create_deploy_token(
    principal: Principal,
    group: Group,
    name: str,
    scopes: str | list[str],
    expires_at: date | None = None,
    username: str | None = None,
) -> CreatedDeployToken:
    """A new deploy token; its secret is in the result only."""
    await policy.require_administer(principal, group, "manage its deploy tokens")
    return await accounts.create_deploy_token(
        group.id, group.full_path, name, scopes, expires_at, username or None
    )


async def deploy_tokens_page(principal: Principal, group: Group, **page: Any) -> Page[DeployToken]:
    """The group's deploy tokens, newest first, revoked ones included (never secrets)."""
    await policy.require_administer(principal, group, "see its deploy tokens")
    return await paginate(accounts.deploy_tokens_query(group.id), **page)


async def list_deploy_tokens(principal: Principal, group: Group) -> list[DeployToken]:
    await policy.require_administer(principal, group, "see its deploy tokens")
    return await accounts.deploy_tokens_query(group.id).order_by("-created_at", "-id")


async def revoke_deploy_token(principal: Principal, group: Group, name: str) -> DeployToken:
    await policy.require_administer(principal, group, "manage its deploy tokens")
    return await accounts.revoke_deploy_token(group.id, group.full_path, name)
