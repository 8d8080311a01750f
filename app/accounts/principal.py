"""Who is asking: a user (signed in, or through a token), a group deploy token, the
operator at the command line, or the metrics scraper.

Every request becomes one `Principal` in `app.identity` (the HTTP side), the CLI
acts as `Principal.operator()`, and every checked service takes one.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.models import DeployToken, PersonalAccessToken, User, UserSession

ALL_SCOPES = frozenset({"api", "read_api", "read_registry", "write_registry"})
DEPLOY_TOKEN_SCOPES = frozenset({"read_registry", "write_registry"})
REGISTRY_SCOPES = frozenset({"read_registry", "write_registry"})
# GitLab: `api` grants everything `read_api` does.
IMPLIED_SCOPES = {"api": frozenset({"read_api"})}
# The one machine identity the operator configures (DOCKYARD_METRICS_TOKEN).
METRICS_SERVICE = "metrics"


@dataclass(frozen=True)
class Principal:
    """The authenticated party behind a request.

    `scopes` is None for a password or web session (full rights of the user);
    for a personal, group access or deploy token it is the token's scopes.
    `session` is the web session the request came through, if any.
    `is_operator` is the shell's own principal (`Principal.operator()`): the
    policy allows it everything; no HTTP request is ever given it.
    `service` names a machine identity (only the metrics scraper).
    """

    user: User | None = None
    scopes: frozenset[str] | None = None
    personal_access_token: PersonalAccessToken | None = None
    deploy_token: DeployToken | None = None
    session: UserSession | None = None
    is_operator: bool = False
    service: str | None = None

    @classmethod
    def operator(cls) -> Principal:
        """The operator at the command line: `dockyard ...` may do everything."""
        return cls(is_operator=True)

    @classmethod
    def metrics_scraper(cls) -> Principal:
        """Whoever presents DOCKYARD_METRICS_TOKEN: may read /metrics, nothing else."""
        return cls(scopes=frozenset(), service=METRICS_SERVICE)

    @property
    def is_admin(self) -> bool:
        if self.is_operator:
            return True
        return self.user is not None and self.user.is_admin and self.user.is_active

    @property
    def is_bot(self) -> bool:
        """A group access token's bot: a member of one group, and of nothing else."""
        return self.user is not None and self.user.is_bot

    @property
    def kind(self) -> str:
        if self.is_operator:
            return "operator"
        if self.deploy_token is not None:
            return "deploy_token"
        if self.personal_access_token is not None:
            return "group_access_token" if self.is_bot else "personal_access_token"
        return "user"

    def has_scope(self, *wanted: str) -> bool:
        """True when every scope in `wanted` is granted (always for sessions and the
        operator); `api` implies `read_api`."""
        if self.scopes is None:
            return True
        granted = self.scopes.union(*(IMPLIED_SCOPES.get(scope, ()) for scope in self.scopes))
        return all(scope in granted for scope in wanted)

    @property
    def may_use_api(self) -> bool:
        """A person (or a group's bot) whose credential reaches the API at all."""
        if self.is_operator:
            return True
        user = self.user
        if user is None or not user.is_active or self.deploy_token is not None:
            return False
        return self.has_scope("read_api")

    @property
    def may_use_dependency_proxy(self) -> bool:
        """GitLab's rule: `api`, or both registry scopes; sessions/passwords always."""
        if self.scopes is None:
            return True
        return "api" in self.scopes or self.scopes >= REGISTRY_SCOPES

    @property
    def display_name(self) -> str:
        if self.is_operator:
            return "operator"
        if self.deploy_token is not None:
            return self.deploy_token.username
        if self.service is not None:
            return self.service
        return self.user.username if self.user else "anonymous"
