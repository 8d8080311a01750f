"""What each group's cache holds.

Bytes of blobs live in the content-addressed `BlobStore`; these rows say which
group holds which manifest or blob, so sharing bytes never leaks one group's
images to another. Manifests are small (capped) and kept in the row itself.
"""

from __future__ import annotations

from enum import IntEnum

from tortoise import fields
from tortoise.models import Model


class CacheStatus(IntEnum):
    """GitLab's TtlExpirable statuses."""

    DEFAULT = 0
    PENDING_DESTRUCTION = 1
    PROCESSING = 2
    ERROR = 3


class GroupSetting(Model):
    id = fields.IntField(primary_key=True)
    group: fields.OneToOneRelation = fields.OneToOneField(
        "models.Group", related_name="dependency_proxy_setting", on_delete=fields.CASCADE
    )
    enabled = fields.BooleanField(default=True)
    # Docker Hub credentials, AES-GCM encrypted with a key derived from the
    # instance secret; both or neither.
    identity_encrypted = fields.TextField(null=True)
    secret_encrypted = fields.TextField(null=True)
    # Seconds during which a cached tag is served without a revalidating HEAD.
    revalidation_interval = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_group_settings"


class ImageTtlGroupPolicy(Model):
    id = fields.IntField(primary_key=True)
    group: fields.OneToOneRelation = fields.OneToOneField(
        "models.Group", related_name="dependency_proxy_image_ttl_policy", on_delete=fields.CASCADE
    )
    enabled = fields.BooleanField(default=False)
    ttl = fields.IntField(default=90)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_image_ttl_group_policies"


class Manifest(Model):
    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_manifests", on_delete=fields.CASCADE
    )
    # GitLab's naming: `<image>:<tag>.json`, or `<image>:sha256:<hex>.json` for digest pulls.
    file_name = fields.CharField(max_length=1024)
    image_name = fields.CharField(max_length=512)
    reference = fields.CharField(max_length=255)
    digest = fields.CharField(max_length=100)
    content_type = fields.CharField(max_length=255)
    size = fields.BigIntField()
    # What a pull of this image moves (config + layers); None for a multi-platform
    # index, whose size depends on the platform pulled.
    image_size = fields.BigIntField(null=True)
    content = fields.BinaryField()
    status = fields.IntEnumField(CacheStatus, default=CacheStatus.DEFAULT)
    read_at = fields.DatetimeField()
    checked_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_manifests"
        indexes = (
            ("group_id", "file_name", "status"),
            ("group_id", "digest"),
            ("group_id", "status", "read_at", "id"),
        )


class Blob(Model):
    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_blobs", on_delete=fields.CASCADE
    )
    digest = fields.CharField(max_length=100)
    size = fields.BigIntField()
    status = fields.IntEnumField(CacheStatus, default=CacheStatus.DEFAULT)
    read_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_blobs"
        indexes = (
            ("group_id", "digest", "status"),
            ("group_id", "status", "read_at", "id"),
            ("digest",),
        )

    @property
    def file_name(self) -> str:
        return self.digest.split(":", 1)[-1] + ".gz"


class GroupCacheStatistic(Model):
    """Dockyard's own counters per group (GitLab has none): hits, misses, bytes.

    Incremented in batches by `statistics.CacheStatistics.flush`, never on
    every request, and with relative updates so several instances can share
    one row.
    """

    id = fields.IntField(primary_key=True)
    group: fields.OneToOneRelation = fields.OneToOneField(
        "models.Group", related_name="dependency_proxy_statistic", on_delete=fields.CASCADE
    )
    manifest_hits = fields.BigIntField(default=0)
    manifest_misses = fields.BigIntField(default=0)
    blob_hits = fields.BigIntField(default=0)
    blob_misses = fields.BigIntField(default=0)
    bytes_from_cache = fields.BigIntField(default=0)
    bytes_from_upstream = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_group_statistics"
