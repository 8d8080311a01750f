from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# One live row per (group, digest) for blobs and per (group, file name) for
# manifests (a tag, or a digest pull), kept by the database: partial unique
# indexes on status 0 (DEFAULT), which the ORM cannot declare. Writers insert
# with ON CONFLICT (app/dependency_proxy/rows.py). Rows on their way out
# (marked, processing, error) are not "live" and may coexist with a fresh one.
# Duplicates that several worker processes made before are folded first: the
# oldest blob row and the newest manifest row (the one served) stay.
LIVE_INDEXES = (
    ("dependency_proxy_blobs", "dependency_proxy_blobs_live_digest", "group_id, digest", "MIN"),
    ("dependency_proxy_manifests", "dependency_proxy_manifests_live_file_name", "group_id, file_name", "MAX"),
)


async def create_live_indexes(apps, schema_editor) -> None:
    client = schema_editor.client
    for table, index, columns, keep in LIVE_INDEXES:
        await client.execute_query(
            f"DELETE FROM {table} WHERE status = 0 AND id NOT IN"
            f" (SELECT {keep}(id) FROM {table} WHERE status = 0 GROUP BY {columns})"
        )
        await client.execute_query(
            f"CREATE UNIQUE INDEX {index} ON {table} ({columns}) WHERE status = 0"
        )


async def drop_live_indexes(apps, schema_editor) -> None:
    client = schema_editor.client
    for _, index, _, _ in LIVE_INDEXES:
        await client.execute_query(f"DROP INDEX IF EXISTS {index}")


class Migration(migrations.Migration):
    dependencies = [('models', '0006_manifest_pins')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DownloadLease',
            fields=[
                ('digest', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=100)),
                ('holder', fields.CharField(max_length=64)),
                ('address', fields.CharField(max_length=1024)),
                ('acquired_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_download_leases', 'app': 'models', 'indexes': [Index(fields=['holder'])], 'pk_attr': 'digest', 'table_description': 'Which instance downloads a blob from the upstream right now (scale-out only).'},
            bases=['Model'],
        ),
        ops.RunPython(create_live_indexes, drop_live_indexes),
    ]
