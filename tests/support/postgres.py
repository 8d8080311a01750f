"""A throw-away PostgreSQL server (Debian's packages) on 127.0.0.1 for scale-out tests."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.dockyard_server import free_port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """initdb + pg_ctl in a temp folder; runs as the `postgres` user when we are root."""

    def __init__(self, workdir: Path) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.bin = bin_dir
        self.workdir = workdir
        self.data = workdir / "data"
        self.port = free_port()
        self._databases: set[str] = set()

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start_server()

    def start_server(self) -> None:
        """Start the initialised cluster (again, after `stop`: same port, same data)."""
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.workdir / "log"),
            "-w",
            "start",
        )

    def create_database(self, name: str) -> str:
        """A new, empty database (its name made unique: one cluster serves many tests)."""
        unique, number = name, 1
        while unique in self._databases:
            number += 1
            unique = f"{name}_{number}"
        self._databases.add(unique)
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", unique)
        return self.url(unique)

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextmanager
def throwaway_postgres(prefix: str = "dockyard-pg-") -> Iterator[PostgresServer]:
    """A running cluster, removed afterwards."""
    # Not under pytest's tmp folder: the postgres user cannot enter root's 0700 folders.
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    server = PostgresServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
