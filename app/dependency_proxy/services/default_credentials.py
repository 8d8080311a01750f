"""The instance's default Docker Hub credentials (admins): shown, changed, and who relies on them.

They are used for a group's Docker Hub upstream only when the group set none
there (`upstreams.entry_of`), so that groups escape Docker Hub's anonymous
rate limit. Stored encrypted like a group's, never shown back.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.policy import require_admin, require_admin_reader
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy import credentials
from app.dependency_proxy.services import authorize_pull
from app.dependency_proxy.upstream_lists import (
    check_credentials,
    groups_relying_on_defaults,
)
from app.instance.services import get_instance_settings, store_docker_hub_credentials


@dataclass(frozen=True)
class DefaultCredentials:
    identity: str | None
    has_secret: bool
    #: Groups whose pulls from Docker Hub use them (they set no credentials there).
    relying_groups: tuple[str, ...]


async def default_docker_hub_credentials(
    principal: Principal,
    settings: Settings,
    *,
    identity: str | None = None,
    secret: str | None = None,
    clear: bool = False,
) -> DefaultCredentials:
    """Change them when `identity` and `secret` (or `clear`) are given, then show them."""
    if clear or identity is not None or secret is not None:
        require_admin(principal, "change instance settings")
        if clear:
            await store_docker_hub_credentials(principal, None, None)
        else:
            check_credentials(identity.strip() if identity else identity, secret or None)
            assert identity is not None and secret is not None
            await store_docker_hub_credentials(
                principal,
                credentials.encrypt(settings.secret_key, identity.strip()),
                credentials.encrypt(settings.secret_key, secret),
            )
        # Pulls read instance settings through a short cache: this process sees it now.
        authorize_pull.forget_instance_settings()
    else:
        require_admin_reader(principal, "see instance settings")
    current = await get_instance_settings(settings)
    sealed = current.docker_hub_identity_encrypted
    return DefaultCredentials(
        identity=credentials.decrypt(settings.secret_key, sealed) if sealed else None,
        has_secret=bool(current.docker_hub_secret_encrypted),
        relying_groups=tuple(await groups_relying_on_defaults()),
    )
