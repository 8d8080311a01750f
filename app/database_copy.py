"""Copy every row of one Dockyard database into another (SQLite to PostgreSQL).

`dockyard db migrate-to --database-url postgres://...` runs this once when a
single-machine instance moves to PostgreSQL (docs/deploy.md), with the
instance stopped. The target is migrated to the current schema first and must
hold no rows. Rows keep their ids and timestamps, so tokens, sessions (with the
same secret key), memberships and cached manifests stay as they were;
PostgreSQL's id sequences are moved past the copied ids. The per-group cache
totals are not copied: the target's triggers count them from the copied rows.
The source is only read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields import DatetimeField
from tortoise.models import Model
from tortoise.transactions import in_transaction

from app import db
from app.config import Settings, load_settings

BATCH = 500
TARGET = "target"


class TargetNotEmpty(Exception):
    """The target database already holds rows: copying would mix two instances."""


@dataclass
class CopyReport:
    #: Rows copied per table, in the order they were copied.
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def _derived(model: type[Model]) -> bool:
    """Tables the database fills itself (trigger-maintained counters)."""
    from app.dependency_proxy.models import GroupCacheTotals

    return model is GroupCacheTotals


def copy_order() -> list[type[Model]]:
    """Every model, each after the models its foreign keys point to."""
    models = [model for app in Tortoise.apps.values() for model in app.values()]
    ordered: list[type[Model]] = []

    def visit(model: type[Model], path: tuple[type[Model], ...]) -> None:
        if model in ordered:
            return
        for name in model._meta.fk_fields | model._meta.o2o_fields:
            related = model._meta.fields_map[name].related_model  # type: ignore[attr-defined]
            if related is not model and related not in path:
                visit(related, (*path, model))
        ordered.append(model)

    for model in sorted(models, key=lambda item: item._meta.db_table):
        visit(model, ())
    return [model for model in ordered if not _derived(model)]


@contextlib.contextmanager
def _keeping_timestamps(models: list[type[Model]]) -> Iterator[None]:
    """`auto_now` would stamp every copied row with the time of the copy; cleanup
    and the pages read `updated_at`, so the copy keeps the source's."""
    switched = [
        item
        for model in models
        for item in model._meta.fields_map.values()
        if isinstance(item, DatetimeField) and item.auto_now
    ]
    for item in switched:
        item.auto_now = False
    try:
        yield
    finally:
        for item in switched:
            item.auto_now = True


async def _copy_table(model: type[Model], target: BaseDBAsyncClient) -> int:
    columns = list(model._meta.fields_db_projection)
    pk = model._meta.pk_attr
    copied, last = 0, None
    while True:
        query = model.all().order_by(pk).limit(BATCH)
        if last is not None:
            query = query.filter(**{f"{pk}__gt": last})
        rows = await query
        if not rows:
            return copied
        # New instances with their ids given: inserted with those ids.
        fresh = [model(**{name: getattr(row, name) for name in columns}) for row in rows]
        await model.bulk_create(fresh, using_db=target)
        copied += len(rows)
        last = rows[-1].pk


async def _advance_sequences(models: list[type[Model]], target: BaseDBAsyncClient) -> None:
    for model in models:
        pk = model._meta.pk
        if not pk.generated:
            continue
        table, column = model._meta.db_table, model._meta.db_pk_column
        await target.execute_query(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
            f'COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) FROM "{table}"'
        )


async def copy_database(source: Settings, target_url: str) -> CopyReport:
    """Migrate the target, then copy every row of the source into it."""
    await db.migrate(load_settings({}, data_dir=source.data_dir, database_url=target_url))
    config = db.tortoise_config(source.database_url)
    config["connections"][TARGET] = db.tortoise_config(target_url)["connections"]["default"]
    await Tortoise.init(config=config)
    try:
        target = connections.get(TARGET)
        models = copy_order()
        for model in models:
            table = model._meta.db_table
            # Raw SQL: a query set would be built in the source's SQL dialect.
            count, _ = await target.execute_query(f'SELECT 1 FROM "{table}" LIMIT 1')
            if count:
                raise TargetNotEmpty(f"the target database already holds {table} rows")
        report = CopyReport()
        async with in_transaction(TARGET) as transaction:
            with _keeping_timestamps(models):
                for model in models:
                    report.tables[model._meta.db_table] = await _copy_table(model, transaction)
            if target.capabilities.dialect == "postgres":
                await _advance_sequences(models, transaction)
        return report
    finally:
        await Tortoise.close_connections()
