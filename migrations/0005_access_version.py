from tortoise import migrations
from tortoise.migrations import operations as ops

# The access version (app/access_version.py): one row whose counter moves, in
# the same transaction, with every write that can change who may pull what.
# Processes keep principals and pull authorizations only while it stands still.
# Token columns written on every use (last_used_at) are left out on purpose.

TABLE = "access_versions"
WATCHED = (
    ("users", ""),
    ("personal_access_tokens", "user_id, token_digest, scopes, expires_at, revoked_at"),
    ("deploy_tokens", "group_id, username, token_digest, scopes, expires_at, revoked_at"),
    ("groups", ""),
    ("memberships", ""),
    ("dependency_proxy_group_settings", ""),
    ("instance_settings", ""),
    ("access_token_settings", ""),
)
EVENTS = ("INSERT", "UPDATE", "DELETE")
BUMP = f"UPDATE {TABLE} SET version = version + 1 WHERE id = 1"


def _event(event: str, columns: str) -> str:
    return f"UPDATE OF {columns}" if event == "UPDATE" and columns else event


def _sqlite() -> list[str]:
    return [
        f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)",
        *(
            f"CREATE TRIGGER {table}_access_{event.lower()} AFTER {_event(event, columns)} "
            f"ON {table} BEGIN {BUMP}; END"
            for table, columns in WATCHED
            for event in EVENTS
        ),
    ]


def _postgres() -> list[str]:
    # Statement-level: one bump per statement, however many rows it touched.
    return [
        f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
        f"""CREATE FUNCTION {TABLE}_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {BUMP}; RETURN NULL; END $$""",
        *(
            f"CREATE TRIGGER {table}_access_{event.lower()} AFTER {_event(event, columns)} "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_bump()"
            for table, columns in WATCHED
            for event in EVENTS
        ),
    ]


async def create_access_version(apps, schema_editor) -> None:
    client = schema_editor.client
    sqlite = client.capabilities.dialect == "sqlite"
    for statement in [*(_sqlite() if sqlite else _postgres()), f"INSERT INTO {TABLE} VALUES (1, 0)"]:
        if sqlite:
            await client.execute_query(statement)
        else:
            await client.execute_script(statement)


async def drop_access_version(apps, schema_editor) -> None:
    client = schema_editor.client
    sqlite = client.capabilities.dialect == "sqlite"
    for table, _ in WATCHED:
        for event in EVENTS:
            on = "" if sqlite else f" ON {table}"
            await client.execute_script(f"DROP TRIGGER IF EXISTS {table}_access_{event.lower()}{on}")
    if not sqlite:
        await client.execute_script(f"DROP FUNCTION IF EXISTS {TABLE}_bump()")
    await client.execute_script(f"DROP TABLE IF EXISTS {TABLE}")


class Migration(migrations.Migration):
    dependencies = [('models', '0004_identity_and_access')]

    initial = False

    operations = [
        ops.RunPython(create_access_version, drop_access_version),
    ]
