from tortoise import migrations
from tortoise.migrations import operations as ops
from app.dependency_proxy.models import ClearState
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Group totals kept by the database (see app/dependency_proxy/models.py,
# GroupCacheTotals): every statement that inserts or deletes a cache row, or
# changes its status or size, adjusts its group's counters in the same
# statement, with relative updates, so concurrent writers never lose one.
# Rows never move between groups. Status 1 and 2 (PENDING_DESTRUCTION,
# PROCESSING) are "leaving".

TOTALS = "dependency_proxy_group_totals"
TABLES = (("dependency_proxy_manifests", "manifest"), ("dependency_proxy_blobs", "blob"))
COLUMNS = "group_id, manifest_count, manifest_bytes, manifests_leaving, blob_count, blob_bytes, blobs_leaving"


def _values(prefix: str, group: str, count: str, size: str, leaving: str) -> str:
    """The VALUES/SELECT list of an insert into the totals: this table's three columns set."""
    if prefix == "manifest":
        return f"{group}, {count}, {size}, {leaving}, 0, 0, 0"
    return f"{group}, 0, 0, 0, {count}, {size}, {leaving}"


def _sqlite(table: str, prefix: str) -> list[str]:
    count, size, leaving = f"{prefix}_count", f"{prefix}_bytes", f"{prefix}s_leaving"
    upsert = (
        f"ON CONFLICT (group_id) DO UPDATE SET {count} = {count} + 1, "
        f"{size} = {size} + excluded.{size}, {leaving} = {leaving} + excluded.{leaving}"
    )
    return [
        f"""CREATE TRIGGER {table}_totals_insert AFTER INSERT ON {table}
        BEGIN
            INSERT INTO {TOTALS} ({COLUMNS})
            VALUES ({_values(prefix, "NEW.group_id", "1", "NEW.size", "NEW.status IN (1, 2)")})
            {upsert};
        END""",
        f"""CREATE TRIGGER {table}_totals_delete AFTER DELETE ON {table}
        BEGIN
            UPDATE {TOTALS} SET {count} = {count} - 1, {size} = {size} - OLD.size,
                {leaving} = {leaving} - (OLD.status IN (1, 2))
            WHERE group_id = OLD.group_id;
        END""",
        f"""CREATE TRIGGER {table}_totals_update AFTER UPDATE OF status, size ON {table}
        WHEN OLD.size <> NEW.size OR (OLD.status IN (1, 2)) <> (NEW.status IN (1, 2))
        BEGIN
            UPDATE {TOTALS} SET {size} = {size} + NEW.size - OLD.size,
                {leaving} = {leaving} + (NEW.status IN (1, 2)) - (OLD.status IN (1, 2))
            WHERE group_id = NEW.group_id;
        END""",
    ]


def _postgres(table: str, prefix: str) -> list[str]:
    # Statement-level triggers with transition tables: one update per group
    # and statement, however many rows it touched. Totals rows are locked in
    # group order first, so two statements that span several groups cannot
    # deadlock on them.
    count, size, leaving = f"{prefix}_count", f"{prefix}_bytes", f"{prefix}s_leaving"
    is_leaving = "CASE WHEN status IN (1, 2) THEN 1 ELSE 0 END"
    lock = (
        f"PERFORM 1 FROM {TOTALS} WHERE group_id IN (SELECT group_id FROM {{rows}}) "
        "ORDER BY group_id FOR UPDATE;"
    )
    # Per group, what an UPDATE changed: bytes, and rows that started or stopped leaving.
    changes = (
        f"(SELECT group_id, SUM(size) AS bytes, SUM(leaving) AS leaving"
        f" FROM (SELECT group_id, size, {is_leaving} AS leaving FROM new_rows"
        f" UNION ALL SELECT group_id, -size, -{is_leaving} FROM old_rows) AS c"
        f" GROUP BY group_id)"
    )
    function = f"""CREATE FUNCTION {table}_totals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO {TOTALS} AS t ({COLUMNS})
            SELECT {_values(prefix, "group_id", "COUNT(*)", "SUM(size)", f"SUM({is_leaving})")}
            FROM new_rows GROUP BY group_id ORDER BY group_id
            ON CONFLICT (group_id) DO UPDATE SET {count} = t.{count} + EXCLUDED.{count},
                {size} = t.{size} + EXCLUDED.{size}, {leaving} = t.{leaving} + EXCLUDED.{leaving};
        ELSIF TG_OP = 'DELETE' THEN
            {lock.format(rows="old_rows")}
            UPDATE {TOTALS} AS t SET {count} = t.{count} - d.n, {size} = t.{size} - d.bytes,
                {leaving} = t.{leaving} - d.leaving
            FROM (SELECT group_id, COUNT(*) AS n, SUM(size) AS bytes, SUM({is_leaving}) AS leaving
                  FROM old_rows GROUP BY group_id) AS d
            WHERE t.group_id = d.group_id;
        ELSE
            {lock.format(rows=changes + " AS d WHERE d.bytes <> 0 OR d.leaving <> 0")}
            UPDATE {TOTALS} AS t SET {size} = t.{size} + d.bytes, {leaving} = t.{leaving} + d.leaving
            FROM {changes} AS d
            WHERE t.group_id = d.group_id AND (d.bytes <> 0 OR d.leaving <> 0);
        END IF;
        RETURN NULL;
    END $$"""
    def trigger(event: str, referencing: str) -> str:
        return (
            f"CREATE TRIGGER {table}_totals_{event.lower()} AFTER {event} ON {table} "
            f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {table}_totals()"
        )
    return [
        function,
        trigger("INSERT", "NEW TABLE AS new_rows"),
        trigger("DELETE", "OLD TABLE AS old_rows"),
        trigger("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ]


BACKFILL = f"""INSERT INTO {TOTALS} ({COLUMNS})
SELECT g.id,
    (SELECT COUNT(*) FROM dependency_proxy_manifests AS r WHERE r.group_id = g.id),
    (SELECT COALESCE(SUM(size), 0) FROM dependency_proxy_manifests AS r WHERE r.group_id = g.id),
    (SELECT COUNT(*) FROM dependency_proxy_manifests AS r WHERE r.group_id = g.id AND r.status IN (1, 2)),
    (SELECT COUNT(*) FROM dependency_proxy_blobs AS r WHERE r.group_id = g.id),
    (SELECT COALESCE(SUM(size), 0) FROM dependency_proxy_blobs AS r WHERE r.group_id = g.id),
    (SELECT COUNT(*) FROM dependency_proxy_blobs AS r WHERE r.group_id = g.id AND r.status IN (1, 2))
FROM groups AS g"""


async def create_totals_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    sqlite = client.capabilities.dialect == "sqlite"
    statements = [
        statement
        for table, prefix in TABLES
        for statement in (_sqlite(table, prefix) if sqlite else _postgres(table, prefix))
    ]
    for statement in [*statements, BACKFILL]:
        if sqlite:
            await client.execute_query(statement)
        else:
            await client.execute_script(statement)


async def drop_totals_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for table, _ in TABLES:
        for event in ("insert", "delete", "update"):
            await client.execute_script(f"DROP TRIGGER IF EXISTS {table}_totals_{event}"
                                        + ("" if client.capabilities.dialect == "sqlite" else f" ON {table}"))
        if client.capabilities.dialect != "sqlite":
            await client.execute_script(f"DROP FUNCTION IF EXISTS {table}_totals()")
    await client.execute_script(f"DELETE FROM {TOTALS}")


class Migration(migrations.Migration):
    dependencies = [('models', '0002_passwords_and_sessions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CacheClear',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.OneToOneField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_cache_clear', on_delete=OnDelete.CASCADE)),
                ('state', fields.IntEnumField(default=ClearState.RUNNING, description='RUNNING: 0\nFINISHED: 1', enum_type=ClearState, generated=False)),
                ('total_count', fields.BigIntField(default=0)),
                ('manifests_marked', fields.BigIntField(default=0)),
                ('blobs_marked', fields.BigIntField(default=0)),
                ('manifest_upto', fields.BigIntField(default=0)),
                ('blob_upto', fields.BigIntField(default=0)),
                ('manifest_cursor', fields.BigIntField(default=0)),
                ('blob_cursor', fields.BigIntField(default=0)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_cache_clears', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A group\'s latest "clear cache": marked chunk by chunk, its progress visible to all.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GroupCacheTotals',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.OneToOneField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_totals', on_delete=OnDelete.CASCADE)),
                ('manifest_count', fields.BigIntField(default=0)),
                ('manifest_bytes', fields.BigIntField(default=0)),
                ('manifests_leaving', fields.BigIntField(default=0)),
                ('blob_count', fields.BigIntField(default=0)),
                ('blob_bytes', fields.BigIntField(default=0)),
                ('blobs_leaving', fields.BigIntField(default=0)),
            ],
            options={'table': 'dependency_proxy_group_totals', 'app': 'models', 'pk_attr': 'id', 'table_description': "What a group's cache holds, in numbers: kept by the database, never counted per request."},
            bases=['Model'],
        ),
        ops.RemoveIndex(
            model_name='Blob',
            name=None,
            fields=['group_id', 'digest', 'status'],
        ),
        ops.RemoveIndex(
            model_name='Blob',
            name=None,
            fields=['group_id', 'status', 'read_at', 'id'],
        ),
        ops.AddIndex(
            model_name='Blob',
            index=Index(fields=['group_id', 'digest']),
        ),
        ops.AddIndex(
            model_name='Blob',
            index=Index(fields=['group_id', 'read_at']),
        ),
        ops.AddIndex(
            model_name='Blob',
            index=Index(fields=['group_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Blob',
            index=Index(fields=['status', 'updated_at', 'id']),
        ),
        ops.AddField(
            model_name='InstanceSetting',
            name='initialized_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.RemoveIndex(
            model_name='Manifest',
            name=None,
            fields=['group_id', 'file_name', 'status'],
        ),
        ops.RemoveIndex(
            model_name='Manifest',
            name=None,
            fields=['group_id', 'status', 'read_at', 'id'],
        ),
        ops.AddIndex(
            model_name='Manifest',
            index=Index(fields=['group_id', 'file_name']),
        ),
        ops.AddIndex(
            model_name='Manifest',
            index=Index(fields=['group_id', 'read_at']),
        ),
        ops.AddIndex(
            model_name='Manifest',
            index=Index(fields=['group_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Manifest',
            index=Index(fields=['status', 'updated_at', 'id']),
        ),
        ops.RunPython(create_totals_triggers, drop_totals_triggers),
    ]
