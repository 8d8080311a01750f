"""The token endpoint's use case: credentials + requested scopes → a registry JWT."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.accounts import registry_tokens
from app.accounts.authentication import PasswordCheck, authenticate
from app.accounts.principal import Principal
from app.accounts.registry_tokens import GrantedAccess, IssuedToken
from app.config import Settings
from app.dependency_proxy.errors import InvalidReference
from app.dependency_proxy.references import parse_mirror_repository, parse_repository
from app.errors import DockyardError, PermissionDenied
from app.groups import policy
from app.groups.records import find_group
from app.instance.services import get_instance_settings


class AuthenticationFailed(DockyardError):
    """Unknown user, wrong password, expired or revoked token."""


@dataclass(frozen=True)
class RequestedScope:
    type: str
    name: str
    actions: tuple[str, ...]


def parse_scopes(values: list[str]) -> list[RequestedScope]:
    """`repository:<name>:pull,push` items; each value may hold several, space-separated."""
    scopes = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name and actions:
                scopes.append(RequestedScope(kind, name, tuple(actions.split(","))))
    return scopes


def _group_path_of(name: str, settings: Settings) -> str | None:
    """The group a scope's repository is in: a Dependency Proxy repository's, or in
    registry-mirror mode, the mirror group for a plain Docker Hub name."""
    try:
        return parse_repository(name)[0]
    except InvalidReference:
        if not settings.mirror_group:
            return None
    try:
        return parse_mirror_repository(name, settings.mirror_group)[0]
    except InvalidReference:
        return None


async def _granted(
    principal: Principal, scope: RequestedScope, settings: Settings
) -> GrantedAccess | None:
    """Only `pull` on Dependency Proxy repositories the principal may pull from (and,
    in registry-mirror mode, on plain names, as pulls from the mirror group)."""
    if scope.type != "repository" or "pull" not in scope.actions:
        return None
    group_path = _group_path_of(scope.name, settings)
    if group_path is None:
        return None
    group = await find_group(group_path)
    if group is None or not await policy.can_pull(principal, group):
        return None
    return GrantedAccess(type="repository", name=scope.name, actions=("pull",))


async def grant_registry_access(
    username: str | None,
    secret: str | None,
    scopes: list[str],
    settings: Settings,
    client_address: str,
) -> IssuedToken:
    """Authenticate and mint a JWT granting the subset of `scopes` that is allowed.

    Raises AuthenticationFailed for missing or bad credentials, PermissionDenied
    for valid credentials that may not use the Dependency Proxy at all, and
    TooManyAttempts while password guessing from there is held back.
    """
    if not username or not secret:
        raise AuthenticationFailed("authentication required: use docker login")
    check = PasswordCheck.of(settings, client_address, "registry")
    principal = await authenticate(username, secret, check)
    if principal is None:
        raise AuthenticationFailed(
            "HTTP Basic: Access denied. The username, password or token is incorrect, "
            "expired or revoked"
        )
    if not principal.may_use_dependency_proxy:
        raise PermissionDenied(
            "access forbidden: the token needs the api scope, or both read_registry "
            "and write_registry"
        )
    granted = [
        item
        for scope in parse_scopes(scopes)
        if (item := await _granted(principal, scope, settings))
    ]
    minutes = (await get_instance_settings(settings)).registry_token_expire_minutes
    return registry_tokens.issue(
        principal, granted, settings.secret_key, timedelta(minutes=minutes)
    )
