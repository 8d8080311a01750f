"""Instance-wide settings (admin only) and the first start."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app import clock
from app.accounts import records as accounts
from app.accounts.models import User
from app.accounts.policy import require_admin
from app.accounts.principal import Principal
from app.config import Settings
from app.errors import AlreadyExists, InvalidInput
from app.instance.models import InstanceSetting

INITIAL_ROOT_PASSWORD_FILE = "initial_root_password"


@dataclass(frozen=True)
class InstanceSettings:
    dependency_proxy_enabled: bool
    registry_token_expire_minutes: int
    # Encrypted: only the Dependency Proxy's credentials module reads them.
    docker_hub_identity_encrypted: str | None = None
    docker_hub_secret_encrypted: str | None = None
    # Bytes the whole cache may hold (0: no budget); `disk_budget_from_setting` says
    # whether it is DOCKYARD_DISK_BUDGET's (no admin override stored).
    disk_budget_bytes: int = 0
    disk_budget_from_setting: bool = True


async def _row() -> InstanceSetting:
    row = await InstanceSetting.filter(id=1).first()
    if row is None:
        row, _ = await InstanceSetting.get_or_create(id=1)
    return row


async def get_instance_settings(settings: Settings) -> InstanceSettings:
    row = await _row()
    return InstanceSettings(
        dependency_proxy_enabled=row.dependency_proxy_enabled,
        registry_token_expire_minutes=row.registry_token_expire_minutes
        or settings.registry_token_expire_minutes,
        docker_hub_identity_encrypted=row.docker_hub_identity_encrypted,
        docker_hub_secret_encrypted=row.docker_hub_secret_encrypted,
        disk_budget_bytes=(
            settings.disk_budget if row.disk_budget_bytes is None else int(row.disk_budget_bytes)
        ),
        disk_budget_from_setting=row.disk_budget_bytes is None,
    )


async def disk_budget(default: int) -> int:
    """The instance's disk budget in bytes (0: none): the admin's, else `default`
    (DOCKYARD_DISK_BUDGET). Read by the eviction pass, not per request."""
    row = await _row()
    return default if row.disk_budget_bytes is None else int(row.disk_budget_bytes)


async def store_docker_hub_credentials(
    principal: Principal, identity_encrypted: str | None, secret_encrypted: str | None
) -> None:
    """Keep the instance's default Docker Hub credentials (already encrypted; None clears)."""
    require_admin(principal, "change instance settings")
    row = await _row()
    row.docker_hub_identity_encrypted = identity_encrypted  # type: ignore[assignment]
    row.docker_hub_secret_encrypted = secret_encrypted  # type: ignore[assignment]
    await row.save(
        update_fields=["docker_hub_identity_encrypted", "docker_hub_secret_encrypted", "updated_at"]
    )


async def update_instance_settings(
    principal: Principal,
    settings: Settings,
    *,
    dependency_proxy_enabled: bool | None = None,
    registry_token_expire_minutes: int | None = None,
    disk_budget_bytes: int | None = None,
    disk_budget_from_setting: bool = False,
) -> InstanceSettings:
    """None leaves a value as it is. `disk_budget_bytes` 0 means no budget whatever
    DOCKYARD_DISK_BUDGET says; `disk_budget_from_setting` goes back to that setting."""
    require_admin(principal, "change instance settings")
    if disk_budget_bytes is not None and disk_budget_bytes < 0:
        raise InvalidInput("the disk budget must be a size of 0 (none) or more")
    row = await _row()
    if disk_budget_from_setting:
        row.disk_budget_bytes = None
    elif disk_budget_bytes is not None:
        row.disk_budget_bytes = disk_budget_bytes
    if dependency_proxy_enabled is not None:
        row.dependency_proxy_enabled = dependency_proxy_enabled
    if registry_token_expire_minutes is not None:
        if not 1 <= registry_token_expire_minutes <= 24 * 60:
            raise InvalidInput("token lifetime must be between 1 and 1440 minutes")
        row.registry_token_expire_minutes = registry_token_expire_minutes
    await row.save()
    return await get_instance_settings(settings)


@dataclass(frozen=True)
class FirstStart:
    root: User
    password: str
    password_file: Path


async def ensure_root_user(settings: Settings) -> FirstStart | None:
    """On the first start, create the admin `root`, unless an administrator exists.

    "First" is the instance's own flag (`initialized_at`), not "no users yet":
    an operator who creates users with the CLI before the first `serve` still
    gets `root`, and one who created an admin with `--admin` needs none.
    Its random password goes to `<data dir>/initial_root_password` (mode
    0600), as GitLab does. Later starts leave everything alone.
    """
    await _row()
    # Claiming the flag first means one of several processes starting at once goes on.
    claimed = await InstanceSetting.filter(id=1, initialized_at__isnull=True).update(
        initialized_at=clock.now()
    )
    if not claimed or await User.exists(is_admin=True):
        return None
    password = secrets.token_urlsafe(18)
    try:
        # Like GitLab's expired password: the first sign-in leads to the password page.
        root = await accounts.create_user(
            "root",
            "root@localhost.invalid",
            password,
            name="Administrator",
            is_admin=True,
            password_change_required=True,
        )
    except AlreadyExists:
        # Try again on the next start, once the operator has sorted it out.
        await InstanceSetting.filter(id=1).update(initialized_at=None)
        raise AlreadyExists(
            "a user named 'root' exists but there is no administrator: "
            "create one with `dockyard user create NAME --email EMAIL --admin`"
        ) from None
    password_file = settings.data_dir / INITIAL_ROOT_PASSWORD_FILE
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            "# The password of the administrator 'root', created on first start.\n"
            "# Sign in and change it, then delete this file.\n"
            f"Password: {password}\n"
        )
    os.chmod(password_file, 0o600)
    return FirstStart(root=root, password=password, password_file=password_file)
