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
    # The group's Docker Hub credentials live on its upstream list (`Upstream`).
    # Seconds during which a cached tag is served without a revalidating HEAD.
    revalidation_interval = fields.IntField(default=0)
    # The most the group's cache may hold (bytes, as its totals count them); None:
    # no limit. Over it, `eviction.py` evicts the least recently pulled images.
    size_limit_bytes = fields.BigIntField(null=True)
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
    # An Owner's pin: the TTL policy never expires the image (nor its platform
    # manifests and blobs; `pins.py`); deleting it or clearing the cache still does.
    pinned = fields.BooleanField(default=False)
    read_at = fields.DatetimeField()
    checked_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_manifests"
        # `status` is in one index only: marking and claiming rows (clearing,
        # cleanup) then rewrites one index entry per row, not three.
        indexes = (
            ("group_id", "file_name"),  # a tag pull
            ("group_id", "digest"),  # a digest pull
            ("group_id", "read_at"),  # TTL expiry
            ("group_id", "id"),  # listings: one page of a group, newest first
            ("status", "updated_at", "id"),  # cleanup: the oldest marked rows first
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
            ("group_id", "digest"),  # a blob pull
            ("digest",),  # cleanup: does any group still reference the file?
            ("group_id", "read_at"),  # TTL expiry
            ("group_id", "id"),  # listings: one page of a group, newest first
            ("status", "updated_at", "id"),  # cleanup: the oldest marked rows first
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


class GroupCacheTotals(Model):
    """What a group's cache holds, in numbers: kept by the database, never counted per request.

    Triggers on the manifest and blob tables (migration 0002, `cache_totals.py`)
    change these counters in the same statement that inserts, deletes or
    changes the status or size of a row, with relative updates, so every
    writer (pulls, clearing, cleanup, several instances, an operator's SQL)
    keeps them right. `dockyard cache recount` recomputes them from the rows.
    Counts include rows on their way out (GitLab's do); `*_leaving` says how
    many of them are PENDING_DESTRUCTION or PROCESSING.
    """

    id = fields.IntField(primary_key=True)
    group: fields.OneToOneRelation = fields.OneToOneField(
        "models.Group", related_name="dependency_proxy_totals", on_delete=fields.CASCADE
    )
    manifest_count = fields.BigIntField(default=0)
    manifest_bytes = fields.BigIntField(default=0)
    manifests_leaving = fields.BigIntField(default=0)
    blob_count = fields.BigIntField(default=0)
    blob_bytes = fields.BigIntField(default=0)
    blobs_leaving = fields.BigIntField(default=0)

    class Meta:
        table = "dependency_proxy_group_totals"


class ClearState(IntEnum):
    RUNNING = 0
    FINISHED = 1


class CacheClear(Model):
    """A group's latest "clear cache": marked chunk by chunk, its progress visible to all.

    Only rows that existed when the clear was asked for are marked (ids up to
    `*_upto`); a pull after that records a fresh row that stays. `lease_until`
    says a process is marking right now; when it passes (the process died),
    the cleanup worker takes the clear over.
    """

    id = fields.IntField(primary_key=True)
    group: fields.OneToOneRelation = fields.OneToOneField(
        "models.Group", related_name="dependency_proxy_cache_clear", on_delete=fields.CASCADE
    )
    state = fields.IntEnumField(ClearState, default=ClearState.RUNNING)
    total_count = fields.BigIntField(default=0)
    manifests_marked = fields.BigIntField(default=0)
    blobs_marked = fields.BigIntField(default=0)
    manifest_upto = fields.BigIntField(default=0)
    blob_upto = fields.BigIntField(default=0)
    manifest_cursor = fields.BigIntField(default=0)
    blob_cursor = fields.BigIntField(default=0)
    lease_until = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "dependency_proxy_cache_clears"


class DownloadLease(Model):
    """Which instance downloads a blob from the upstream right now (scale-out only).

    One row per digest being downloaded, on PostgreSQL when blobs live in S3
    (`downloads/leases.py`): the holder renews `expires_at` every few seconds;
    a row past it belongs to an instance that died, and the next instance to
    ask takes it over. Other instances stream the growing blob from `address`
    (the holder's internal URL). Times are the database's own clock, so the
    instances' clocks never need to agree.
    """

    digest = fields.CharField(max_length=100, primary_key=True)
    holder = fields.CharField(max_length=64)
    address = fields.CharField(max_length=1024)
    acquired_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()

    class Meta:
        table = "dependency_proxy_download_leases"
        indexes = (("holder",),)  # the heartbeat renews one holder's rows


class Upstream(Model):
    """One registry of a group's ordered upstream list (`upstreams.py` resolves on it).

    A group without rows inherits its nearest ancestor's list, and a top-level
    group without rows has the implicit default: Docker Hub only. `url` None is
    that instance-wide Docker Hub upstream (`DOCKYARD_UPSTREAM_URL`), so a
    group's Docker Hub entry follows the setting instead of freezing today's value.
    """

    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_upstreams", on_delete=fields.CASCADE
    )
    position = fields.IntField()
    name = fields.CharField(max_length=64)
    url = fields.CharField(max_length=255, null=True)
    # AES-GCM with a key derived from the instance secret (`credentials.py`);
    # both or neither.
    identity_encrypted = fields.TextField(null=True)
    secret_encrypted = fields.TextField(null=True)
    # None: the group's revalidation interval decides; 0: a HEAD on every tag pull.
    cache_validity_hours = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_upstreams"
        unique_together = (("group", "name"),)
        indexes = (("group_id", "position"),)


class ImageUpstream(Model):
    """Which upstream served an image to a group first: asked first from then on.

    One row per (pulling group, image). The upstream may belong to an ancestor
    whose list the group inherits; deleting the upstream deletes the memory.
    """

    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_image_upstreams", on_delete=fields.CASCADE
    )
    image_name = fields.CharField(max_length=512)
    upstream: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Upstream", related_name="images", on_delete=fields.CASCADE
    )
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dependency_proxy_image_upstreams"
        unique_together = (("group", "image_name"),)


class GroupUsage(Model):
    """A group's use of its cache over one hour or one day (`usage.py`).

    Written by each process's periodic flush as `INSERT … ON CONFLICT … DO UPDATE`
    adding its counts, so workers and instances sum up; hours older than
    `usage.HOURLY_RETENTION_DAYS` are rolled up into days by the cleanup worker.
    `starts_at` is Unix seconds (UTC), a whole hour or day: an integer compares and
    groups the same on SQLite and PostgreSQL.
    """

    id = fields.BigIntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_usage", on_delete=fields.CASCADE
    )
    period = fields.CharField(max_length=8)  # "hour" or "day"
    starts_at = fields.BigIntField()
    pulls = fields.BigIntField(default=0)  # manifest requests
    hits = fields.BigIntField(default=0)
    misses = fields.BigIntField(default=0)
    docker_hub_hits = fields.BigIntField(default=0)  # hits a Docker Hub upstream would have counted
    bytes_from_cache = fields.BigIntField(default=0)
    bytes_from_upstream = fields.BigIntField(default=0)
    upstream_requests = fields.BigIntField(default=0)
    rate_limit_remaining = fields.IntField(null=True)  # the lowest seen in the period

    class Meta:
        table = "dependency_proxy_usage"
        unique_together = (("group", "period", "starts_at"),)
        indexes = (("period", "starts_at"),)  # the rollup and retention


class ImageUsage(Model):
    """Pulls of one image by one group in one day (the admin's top images by pulls)."""

    id = fields.BigIntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_image_usage", on_delete=fields.CASCADE
    )
    image_name = fields.CharField(max_length=512)
    starts_at = fields.BigIntField()  # the day, Unix seconds (UTC)
    pulls = fields.BigIntField(default=0)
    hits = fields.BigIntField(default=0)

    class Meta:
        table = "dependency_proxy_image_usage"
        unique_together = (("group", "image_name", "starts_at"),)
        indexes = (("starts_at",),)


class WarmState(IntEnum):
    QUEUED = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class WarmJob(Model):
    """A pre-warm of some images into a group's cache (`warm_jobs.py`).

    Queued by an Owner or Maintainer, claimed by one worker (`holder`) whose
    `lease_until` it renews while it runs: a job whose lease passed belongs to
    a process that died, and the next claim takes it over.
    """

    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="dependency_proxy_warm_jobs", on_delete=fields.CASCADE
    )
    state = fields.IntEnumField(WarmState, default=WarmState.QUEUED)
    # Empty with all_platforms false: linux/amd64 (the default for an index).
    platforms = fields.CharField(max_length=1024, default="")
    all_platforms = fields.BooleanField(default=False)
    # Who started it: the run pulls as this user (None: the operator at the command
    # line). Their jobs go with a deleted user: nobody else's rights would stand in.
    user: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.CASCADE
    )
    created_by = fields.CharField(max_length=255)
    holder = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "dependency_proxy_warm_jobs"
        indexes = (("group_id", "id"), ("state", "id"))


class WarmJobImage(Model):
    """One image of a warm job and its progress (blobs: config and layers)."""

    id = fields.IntField(primary_key=True)
    job: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.WarmJob", related_name="images", on_delete=fields.CASCADE
    )
    position = fields.IntField()
    image = fields.CharField(max_length=512)
    reference = fields.CharField(max_length=255)
    state = fields.IntEnumField(WarmState, default=WarmState.QUEUED)
    layers_total = fields.IntField(default=0)
    layers_done = fields.IntField(default=0)
    bytes_total = fields.BigIntField(default=0)
    bytes_done = fields.BigIntField(default=0)
    error = fields.CharField(max_length=1024, null=True)

    class Meta:
        table = "dependency_proxy_warm_job_images"
        unique_together = (("job", "position"),)
