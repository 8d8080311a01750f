from datetime import UTC, datetime

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Each group's Docker Hub credentials (dependency_proxy_group_settings) become
# the credentials of the first entry of its own upstream list: Docker Hub,
# following DOCKYARD_UPSTREAM_URL (url NULL). Groups without credentials keep
# no list and so inherit, or get the default (Docker Hub only) as before.
# The ciphertexts move as they are: same key, same format.


async def move_credentials_to_upstreams(apps, schema_editor) -> None:
    client = schema_editor.client
    sqlite = client.capabilities.dialect == "sqlite"
    now = datetime.now(UTC)
    # SQLite keeps Tortoise's datetimes as ISO text; PostgreSQL takes the value.
    values, marks = ([now.isoformat(" ")] * 2, ("?", "?")) if sqlite else ([now], ("$1", "$1"))
    await client.execute_query(
        "INSERT INTO dependency_proxy_upstreams (group_id, position, name, url, "
        "identity_encrypted, secret_encrypted, cache_validity_hours, created_at, updated_at) "
        "SELECT group_id, 1, 'docker-hub', NULL, identity_encrypted, secret_encrypted, NULL, "
        f"{marks[0]}, {marks[1]} FROM dependency_proxy_group_settings "
        "WHERE identity_encrypted IS NOT NULL AND secret_encrypted IS NOT NULL",
        values,
    )


async def move_credentials_back(apps, schema_editor) -> None:
    # Only the Docker Hub entry that follows the instance URL maps back.
    await schema_editor.client.execute_script(
        "UPDATE dependency_proxy_group_settings SET "
        "identity_encrypted = (SELECT u.identity_encrypted FROM dependency_proxy_upstreams u "
        "WHERE u.group_id = dependency_proxy_group_settings.group_id AND u.url IS NULL "
        "ORDER BY u.position LIMIT 1), "
        "secret_encrypted = (SELECT u.secret_encrypted FROM dependency_proxy_upstreams u "
        "WHERE u.group_id = dependency_proxy_group_settings.group_id AND u.url IS NULL "
        "ORDER BY u.position LIMIT 1)"
    )


# A pull's granted context holds the group's upstream list (app/dependency_
# proxy/services/authorize_pull.py), kept while the access version (migration
# 0005) stands still: a change to any upstream row must move it, as the other
# watched tables do. And SQLite rebuilds dependency_proxy_group_settings to drop
# its credential columns, which drops that table's triggers with it: they are
# made again. (The remembered upstream per image is not part of that context.)
WATCHED = ("dependency_proxy_upstreams", "dependency_proxy_group_settings")
EVENTS = ("INSERT", "UPDATE", "DELETE")


async def watch_upstreams(apps, schema_editor) -> None:
    client = schema_editor.client
    sqlite = client.capabilities.dialect == "sqlite"
    for table in WATCHED:
        for event in EVENTS:
            name = f"{table}_access_{event.lower()}"
            if sqlite:
                await client.execute_query(
                    f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} BEGIN "
                    "UPDATE access_versions SET version = version + 1 WHERE id = 1; END"
                )
            else:
                await client.execute_script(
                    f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION access_versions_bump()"
                )


async def unwatch_upstreams(apps, schema_editor) -> None:
    # The group settings' triggers belong to migration 0005: only the new ones go.
    client = schema_editor.client
    on = "" if client.capabilities.dialect == "sqlite" else f" ON {WATCHED[0]}"
    for event in EVENTS:
        await client.execute_script(
            f"DROP TRIGGER IF EXISTS {WATCHED[0]}_access_{event.lower()}{on}"
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0007_download_leases')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Upstream',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_upstreams', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('name', fields.CharField(max_length=64)),
                ('url', fields.CharField(null=True, max_length=255)),
                ('identity_encrypted', fields.TextField(null=True, unique=False)),
                ('secret_encrypted', fields.TextField(null=True, unique=False)),
                ('cache_validity_hours', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_upstreams', 'app': 'models', 'unique_together': (('group', 'name'),), 'indexes': [Index(fields=['group_id', 'position'])], 'pk_attr': 'id', 'table_description': "One registry of a group's ordered upstream list (`upstreams.py` resolves on it)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ImageUpstream',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_image_upstreams', on_delete=OnDelete.CASCADE)),
                ('image_name', fields.CharField(max_length=512)),
                ('upstream', fields.ForeignKeyField('models.Upstream', source_field='upstream_id', db_constraint=True, to_field='id', related_name='images', on_delete=OnDelete.CASCADE)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_image_upstreams', 'app': 'models', 'unique_together': (('group', 'image_name'),), 'pk_attr': 'id', 'table_description': 'Which upstream served an image to a group first: asked first from then on.'},
            bases=['Model'],
        ),
        ops.RunPython(move_credentials_to_upstreams, move_credentials_back),
        ops.RemoveField(model_name='GroupSetting', name='identity_encrypted'),
        ops.RemoveField(model_name='GroupSetting', name='secret_encrypted'),
        ops.AddField(
            model_name='InstanceSetting',
            name='docker_hub_identity_encrypted',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='InstanceSetting',
            name='docker_hub_secret_encrypted',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.RunPython(watch_upstreams, unwatch_upstreams),
    ]
