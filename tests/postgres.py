"""A real PostgreSQL server for the tests: Debian's `postgresql`, initialized and started in a temporary
folder on a free loopback port, stopped at the end of the session.

PostgreSQL refuses to run as root, so under root it runs as the `postgres` system user. Tests reach it
over TCP as the role `rl` with a password (what a host of a fleet does); the superuser creates one
database per test through the server's Unix socket.
"""

from __future__ import annotations

import glob
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, or where Debian installs them."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="rl-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self._names = itertools.count()
        self._as_postgres = os.geteuid() == 0  # PostgreSQL will not run as root

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)

    def start(self) -> Server:
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")
        self.admin(f"CREATE ROLE rl LOGIN PASSWORD '{self.password}'")
        return self

    def admin(self, sql: str, database: str = "postgres") -> list[tuple]:
        """A statement as the superuser, over the Unix socket."""
        import psycopg

        with psycopg.connect(host=str(self.folder), port=self.port, user="postgres", dbname=database,
                             autocommit=True) as db:
            cursor = db.execute(sql)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def url(self, database: str, *, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://rl{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database owned by `rl`; its name."""
        name = f"registry_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} OWNER rl")
        return name

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
