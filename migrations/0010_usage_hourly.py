# Usage over time (issue 13 point 5): per group per hour and per day, and pulls per
# image per day. New tables only: no existing table (nor its triggers) is touched.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0009_size_limits")]

    initial = False

    operations = [
        ops.CreateModel(
            name="GroupUsage",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "group",
                    fields.ForeignKeyField(
                        "models.Group",
                        source_field="group_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="dependency_proxy_usage",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("period", fields.CharField(max_length=8)),
                ("starts_at", fields.BigIntField()),
                ("pulls", fields.BigIntField(default=0)),
                ("hits", fields.BigIntField(default=0)),
                ("misses", fields.BigIntField(default=0)),
                ("docker_hub_hits", fields.BigIntField(default=0)),
                ("bytes_from_cache", fields.BigIntField(default=0)),
                ("bytes_from_upstream", fields.BigIntField(default=0)),
                ("upstream_requests", fields.BigIntField(default=0)),
                ("rate_limit_remaining", fields.IntField(null=True)),
            ],
            options={
                "table": "dependency_proxy_usage",
                "app": "models",
                "unique_together": (("group", "period", "starts_at"),),
                "indexes": [Index(fields=["period", "starts_at"])],
                "pk_attr": "id",
                "table_description": "A group's use of its cache over one hour or one day (`usage.py`).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ImageUsage",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "group",
                    fields.ForeignKeyField(
                        "models.Group",
                        source_field="group_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="dependency_proxy_image_usage",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("image_name", fields.CharField(max_length=512)),
                ("starts_at", fields.BigIntField()),
                ("pulls", fields.BigIntField(default=0)),
                ("hits", fields.BigIntField(default=0)),
            ],
            options={
                "table": "dependency_proxy_image_usage",
                "app": "models",
                "unique_together": (("group", "image_name", "starts_at"),),
                "indexes": [Index(fields=["starts_at"])],
                "pk_attr": "id",
                "table_description": "Pulls of one image by one group in one day (the admin's top images by pulls).",
            },
            bases=["Model"],
        ),
    ]
