"""Instance-wide settings that admins change at run time (one row)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class InstanceSetting(Model):
    id = fields.IntField(primary_key=True)
    dependency_proxy_enabled = fields.BooleanField(default=True)
    # None: use the configured DOCKYARD_REGISTRY_TOKEN_EXPIRE_MINUTES.
    registry_token_expire_minutes = fields.IntField(null=True)
    # When the first start was settled (root created, or an admin already
    # existed): later starts never create root again, whatever users exist.
    initialized_at = fields.DatetimeField(null=True)
    # Docker Hub credentials for every group that sets none on a Docker Hub
    # upstream (to escape anonymous rate limits); AES-GCM encrypted by
    # `app/dependency_proxy/credentials.py`, both or neither, never shown back.
    docker_hub_identity_encrypted = fields.TextField(null=True)
    docker_hub_secret_encrypted = fields.TextField(null=True)
    # Bytes the whole cache may hold; None: DOCKYARD_DISK_BUDGET (0 there: none),
    # 0 here: no budget whatever the setting says.
    disk_budget_bytes = fields.BigIntField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "instance_settings"
