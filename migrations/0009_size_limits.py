# Size limits (issue 13 point 3): a group's limit and the instance's disk budget.
# Both are ADD COLUMN (SQLite's ALTER TABLE ... ADD COLUMN), never a table rebuild,
# so the access-version triggers on both tables (0005, 0008) stay.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0008_group_upstreams")]

    initial = False

    operations = [
        ops.AddField(
            model_name="GroupSetting",
            name="size_limit_bytes",
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name="InstanceSetting",
            name="disk_budget_bytes",
            field=fields.BigIntField(null=True),
        ),
    ]
