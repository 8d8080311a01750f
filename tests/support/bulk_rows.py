"""Cache rows written straight into Dockyard's database, in bulk (benchmarks, plan tests).

A pull writes one row at a time; a benchmark of 600k rows cannot wait for
that. Rows go in with plain SQL in large transactions (SQLite) or COPY
(PostgreSQL), shaped as pulls write them: a manifest with its JSON in the row,
five blobs per manifest. Whatever the database keeps up by itself (the group
totals' triggers, when the schema has them) is kept up here too: nothing is
bypassed. One blob in a hundred also gets a file, so cleanup has files to
remove and `files_deleted` can be checked.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

BLOBS_PER_MANIFEST = 5
FILE_EVERY = 100  # one blob in FILE_EVERY has a file on disk
BATCH = 20_000
MANIFEST_CONTENT = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
    + b'"layers":['
    + b" " * 420
    + b"]}"
)
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_COLUMNS = (
    "group_id",
    "file_name",
    "image_name",
    "reference",
    "digest",
    "content_type",
    "size",
    "image_size",
    "content",
    "status",
    "pinned",
    "read_at",
    "checked_at",
    "created_at",
    "updated_at",
)
BLOB_COLUMNS = ("group_id", "digest", "size", "status", "read_at", "created_at", "updated_at")


def long_ago() -> datetime:
    """When the inserted rows were last read: long enough for any TTL to expire them."""
    return datetime.now(UTC) - timedelta(days=100)


@dataclass(frozen=True)
class Inserted:
    manifests: int
    blobs: int
    files: int


def _digest(kind: int, generation: int, group_id: int, index: int) -> str:
    # Distinct per row and generation; 64 hex digits like a real sha256.
    return f"sha256:{kind:04x}{generation:04x}{group_id:08x}{index:048x}"


def _manifests(
    group_ids: Sequence[int], per_group: int, generation: int, when: Any
) -> Iterator[tuple[Any, ...]]:
    for group_id in group_ids:
        for index in range(per_group):
            name = f"library/image{index}"
            yield (
                group_id,
                f"{name}:latest.json",
                name,
                "latest",
                _digest(1, generation, group_id, index),
                MANIFEST_TYPE,
                len(MANIFEST_CONTENT),
                5_000_000,
                MANIFEST_CONTENT,
                0,
                False,
                when,
                when,
                when,
                when,
            )


def _blobs(
    group_ids: Sequence[int], per_group: int, generation: int, when: Any
) -> Iterator[tuple[Any, ...]]:
    for group_id in group_ids:
        for index in range(per_group * BLOBS_PER_MANIFEST):
            yield (
                group_id,
                _digest(2, generation, group_id, index),
                1_000_000,
                0,
                when,
                when,
                when,
            )


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_files(data_dir: Path, group_ids: Sequence[int], per_group: int, generation: int) -> int:
    """Small files for one blob in FILE_EVERY (cleanup removes them)."""
    written = 0
    for group_id in group_ids:
        for index in range(0, per_group * BLOBS_PER_MANIFEST, FILE_EVERY):
            hex_digest = _digest(2, generation, group_id, index).split(":", 1)[1]
            path = data_dir / "blobs" / "sha256" / hex_digest[:2] / hex_digest
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"layer")
            written += 1
    return written


class Rows(Protocol):
    def insert_groups(
        self, parent_id: int, parent_path: str, names: Sequence[str]
    ) -> list[int]: ...

    def insert_cache(self, group_ids: Sequence[int], per_group: int, generation: int) -> None: ...

    def scalar(self, sql: str) -> int: ...

    def execute(self, sql: str) -> None: ...


class SqliteRows:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        # A long timeout: the server may be writing too.
        return sqlite3.connect(self.path, timeout=120, isolation_level=None)

    def insert_groups(self, parent_id: int, parent_path: str, names: Sequence[str]) -> list[int]:
        now = datetime.now(UTC).isoformat(" ")
        with self._connect() as db:
            ids = []
            for name in names:
                full = f"{parent_path}/{name}"
                cursor = db.execute(
                    "INSERT INTO groups (parent_id, path, full_path, full_path_key, name,"
                    " description, visibility, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, '', 'private', ?, ?)",
                    (parent_id, name, full, full.lower(), name, now, now),
                )
                ids.append(int(cursor.lastrowid or 0))
            return ids

    def insert_cache(self, group_ids: Sequence[int], per_group: int, generation: int) -> None:
        when = long_ago().isoformat(" ")
        manifest_sql = (
            f"INSERT INTO dependency_proxy_manifests ({', '.join(MANIFEST_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(MANIFEST_COLUMNS))})"
        )
        blob_sql = (
            f"INSERT INTO dependency_proxy_blobs ({', '.join(BLOB_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(BLOB_COLUMNS))})"
        )
        db = self._connect()
        try:
            for sql, rows in (
                (manifest_sql, _manifests(group_ids, per_group, generation, when)),
                (blob_sql, _blobs(group_ids, per_group, generation, when)),
            ):
                for chunk in _chunks(rows):
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany(sql, chunk)
                    db.execute("COMMIT")
        finally:
            db.close()

    def scalar(self, sql: str) -> int:
        with self._connect() as db:
            return int(db.execute(sql).fetchone()[0])

    def execute(self, sql: str) -> None:
        db = self._connect()
        try:
            db.execute(sql)
        finally:
            db.close()


class PostgresRows:
    def __init__(self, url: str) -> None:
        self.url = url

    def _run(self, work: Any) -> Any:
        async def main() -> Any:
            import asyncpg

            db = await asyncpg.connect(self.url)
            try:
                return await work(db)
            finally:
                await db.close()

        return asyncio.run(main())

    def insert_groups(self, parent_id: int, parent_path: str, names: Sequence[str]) -> list[int]:
        async def work(db: Any) -> list[int]:
            now = datetime.now(UTC)
            ids = []
            for name in names:
                full = f"{parent_path}/{name}"
                ids.append(
                    await db.fetchval(
                        "INSERT INTO groups (parent_id, path, full_path, full_path_key, name,"
                        " description, visibility, created_at, updated_at)"
                        " VALUES ($1, $2, $3, $4, $5, '', 'private', $6, $6) RETURNING id",
                        parent_id,
                        name,
                        full,
                        full.lower(),
                        name,
                        now,
                    )
                )
            return ids

        return self._run(work)  # type: ignore[no-any-return]

    def insert_cache(self, group_ids: Sequence[int], per_group: int, generation: int) -> None:
        async def work(db: Any) -> None:
            when = long_ago()
            for table, columns, rows in (
                (
                    "dependency_proxy_manifests",
                    MANIFEST_COLUMNS,
                    _manifests(group_ids, per_group, generation, when),
                ),
                (
                    "dependency_proxy_blobs",
                    BLOB_COLUMNS,
                    _blobs(group_ids, per_group, generation, when),
                ),
            ):
                for chunk in _chunks(rows):
                    await db.copy_records_to_table(table, records=chunk, columns=list(columns))
            await db.execute("ANALYZE dependency_proxy_manifests")
            await db.execute("ANALYZE dependency_proxy_blobs")

        self._run(work)

    def scalar(self, sql: str) -> int:
        async def work(db: Any) -> int:
            return int(await db.fetchval(sql))

        return self._run(work)  # type: ignore[no-any-return]

    def execute(self, sql: str) -> None:
        async def work(db: Any) -> None:
            await db.execute(sql)

        self._run(work)
