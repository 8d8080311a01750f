from tortoise import migrations
from tortoise.migrations import operations as ops
from app.dependency_proxy.models import WarmState
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0010_usage_hourly")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WarmJob",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "group",
                    fields.ForeignKeyField(
                        "models.Group",
                        source_field="group_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="dependency_proxy_warm_jobs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "state",
                    fields.IntEnumField(
                        default=WarmState.QUEUED,
                        description="QUEUED: 0\nRUNNING: 1\nDONE: 2\nFAILED: 3",
                        enum_type=WarmState,
                        generated=False,
                    ),
                ),
                ("platforms", fields.CharField(default="", max_length=1024)),
                ("all_platforms", fields.BooleanField(default=False)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_by", fields.CharField(max_length=255)),
                ("holder", fields.CharField(null=True, max_length=64)),
                (
                    "lease_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("started_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "dependency_proxy_warm_jobs",
                "app": "models",
                "indexes": [Index(fields=["group_id", "id"]), Index(fields=["state", "id"])],
                "pk_attr": "id",
                "table_description": "A pre-warm of some images into a group's cache (`warm_jobs.py`).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WarmJobImage",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "job",
                    fields.ForeignKeyField(
                        "models.WarmJob",
                        source_field="job_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="images",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("position", fields.IntField()),
                ("image", fields.CharField(max_length=512)),
                ("reference", fields.CharField(max_length=255)),
                (
                    "state",
                    fields.IntEnumField(
                        default=WarmState.QUEUED,
                        description="QUEUED: 0\nRUNNING: 1\nDONE: 2\nFAILED: 3",
                        enum_type=WarmState,
                        generated=False,
                    ),
                ),
                ("layers_total", fields.IntField(default=0)),
                ("layers_done", fields.IntField(default=0)),
                ("bytes_total", fields.BigIntField(default=0)),
                ("bytes_done", fields.BigIntField(default=0)),
                ("error", fields.CharField(null=True, max_length=1024)),
            ],
            options={
                "table": "dependency_proxy_warm_job_images",
                "app": "models",
                "unique_together": (("job", "position"),),
                "pk_attr": "id",
                "table_description": "One image of a warm job and its progress (blobs: config and layers).",
            },
            bases=["Model"],
        ),
    ]
