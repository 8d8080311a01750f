"""Who is asking: a user (signed in, or through a token) or a group deploy token."""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.models import DeployToken, PersonalAccessToken, User, UserSession

ALL_SCOPES = frozenset({"api", "read_api", "read_registry", "write_registry"})
DEPLOY_TOKEN_SCOPES = frozenset({"read_registry", "write_registry"})
REGISTRY_SCOPES = frozenset({"read_registry", "write_registry"})


@dataclass(frozen=True)
class Principal:
    """The authenticated party behind a request.

    `scopes` is None for a password or web session (full rights of the user);
    for a personal access token or deploy token it is the token's scopes.
    `session` is the web session the request came through, if any.
    """

    user: User | None = None
    scopes: frozenset[str] | None = None
    personal_access_token: PersonalAccessToken | None = None
    deploy_token: DeployToken | None = None
    session: UserSession | None = None

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin and self.user.is_active

    @property
    def kind(self) -> str:
        if self.deploy_token is not None:
            return "deploy_token"
        if self.personal_access_token is not None:
            return "personal_access_token"
        return "user"

    def has_scope(self, *wanted: str) -> bool:
        """True when every scope in `wanted` is granted (always for sessions)."""
        return self.scopes is None or all(scope in self.scopes for scope in wanted)

    @property
    def may_use_dependency_proxy(self) -> bool:
        """GitLab's rule: `api`, or both registry scopes; sessions/passwords always."""
        if self.scopes is None:
            return True
        return "api" in self.scopes or self.scopes >= REGISTRY_SCOPES

    @property
    def display_name(self) -> str:
        if self.deploy_token is not None:
            return self.deploy_token.username
        return self.user.username if self.user else "anonymous"
