"""The registry's two databases, each a small dialect: a SQLite file (the default, embedded, nothing to
start) and a PostgreSQL URL (one registry for many machines).

A dialect says only what differs: how to connect, placeholders and column types, how a writer takes
its lock, where the migration state lives, which tables exist, and how a change is announced (SQLite is
polled through PRAGMA data_version; PostgreSQL sends NOTIFY, which servers LISTEN for). The rules,
queries and migrations are registry.py's, written once for both.

The PostgreSQL driver (psycopg 3) is imported only when a URL asks for it.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from . import redact

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5
CHANNEL = "rl_registry_best"  # the NOTIFY channel: a validation that may change the best model
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Unavailable(Exception):
    """The database cannot be opened or used as a registry; the message says why, credentials masked."""


def is_url(target: str | Path) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


class Database(Protocol):
    name: str
    where: str  # the file, or the URL with its password masked: safe to print

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def ddl(self, statement: str) -> str: ...
    def schema_version(self) -> int: ...
    def set_schema_version(self, version: int) -> None: ...
    def lock_migrations(self) -> None: ...
    def tables(self) -> set[str]: ...
    def columns(self, table: str) -> list[str]: ...
    def announce(self) -> None: ...
    def identities_follow(self, tables: Sequence[str]) -> None: ...
    def wait_for_change(self, timeout: float, stop: threading.Event) -> bool: ...
    def close(self) -> None: ...


def connect(target: str | Path) -> Database:
    return PostgreSQL(str(target)) if is_url(target) else SQLite(Path(target))


class SQLite:
    """A file beside the runs, shared by the processes of one host: WAL mode, a busy timeout, and
    short IMMEDIATE write transactions."""

    name = "SQLite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _retrying(lambda: self.db.execute("PRAGMA journal_mode = WAL"))
        except sqlite3.DatabaseError as error:  # "file is not a database"
            self.db.close()
            raise Unavailable(f"{path} is not a SQLite database ({error})") from None
        self.db.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL; files are fsynced anyway
        self._seen = self._data_version()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params)

    def begin(self) -> None:
        _retrying(lambda: self.db.execute("BEGIN IMMEDIATE"))

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    def ddl(self, statement: str) -> str:
        return statement

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self.db.execute(f"PRAGMA user_version = {int(version)}")

    def lock_migrations(self) -> None:
        pass  # BEGIN IMMEDIATE already holds the file's write lock

    def tables(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not r[0].startswith("sqlite_")}

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.db.execute(f"PRAGMA table_info({table})")]

    def identities_follow(self, tables: Sequence[str]) -> None:
        pass  # AUTOINCREMENT keeps its counter past any id inserted explicitly

    def announce(self) -> None:
        pass  # readers poll data_version, which every commit of another connection changes

    def _data_version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def wait_for_change(self, timeout: float, stop: threading.Event) -> bool:
        """After `timeout` seconds (or a stop), whether another connection committed since the last call."""
        if stop.wait(timeout):
            return False
        version = self._data_version()
        changed, self._seen = version != self._seen, version
        return changed

    def close(self) -> None:
        self.db.close()


def _retrying(operation: Callable[[], Any]) -> Any:
    """Run `operation`, waiting out a lock beyond the busy timeout's reach (WAL recovery, a journal-mode
    switch by another process), so that "database is locked" never reaches a user."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


# SQLite's types, as the seed's SQL writes them, to PostgreSQL's: 64-bit integers and doubles (REAL is a
# 4-byte float there), identity keys, and a boolean default that is a boolean.
_POSTGRES_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBOOLEAN DEFAULT 0\b"), "BOOLEAN DEFAULT FALSE"),
)
# A constant key for the advisory lock that serializes migrations across hosts.
_MIGRATION_LOCK = 0x726C5F6D6F64756C


class PostgreSQL:
    """A server many hosts share: ordinary READ COMMITTED transactions, the migration state in a table of
    its own, NOTIFY on a possible new best. Passwords come from the URL or libpq's own PGPASSWORD,
    PGPASSFILE and PGSERVICEFILE."""

    name = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.where = redact.url(url)
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise Unavailable("a PostgreSQL registry needs psycopg: pip install 'rl-module[postgres]'") from None
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        try:
            self.db = psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S,
                                      application_name="rl-module")
        except psycopg.Error as error:
            raise Unavailable(f"cannot connect to {self.where}: {_first_line(error)}") from None
        self._listening = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]

    def begin(self) -> None:
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if not self.db.closed:
            self.db.execute("ROLLBACK")

    def ddl(self, statement: str) -> str:
        for pattern, replacement in _POSTGRES_TYPES:
            statement = pattern.sub(replacement, statement)
        return statement

    def schema_version(self) -> int:
        if "registry_schema" not in self.tables():
            return 0
        row = self.db.execute("SELECT max(version) AS version FROM registry_schema").fetchone()
        return int(row["version"] or 0) if row else 0

    def set_schema_version(self, version: int) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS registry_schema (version BIGINT NOT NULL)")
        self.db.execute("DELETE FROM registry_schema")
        self.db.execute("INSERT INTO registry_schema (version) VALUES (%s)", (version,))

    def lock_migrations(self) -> None:
        """Hosts that start together migrate one after the other (the lock ends with the transaction)."""
        self.db.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    def tables(self) -> set[str]:
        rows = self.db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        return {r["table_name"] for r in rows}

    def columns(self, table: str) -> list[str]:
        rows = self.db.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                               "current_schema() AND table_name = %s ORDER BY ordinal_position", (table,))
        return [r["column_name"] for r in rows]

    def identities_follow(self, tables: Sequence[str]) -> None:
        """After rows were inserted with their ids: the next generated id comes after the largest."""
        for table in tables:
            self.db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"GREATEST((SELECT max(id) FROM {table}), 1), (SELECT max(id) FROM {table}) IS NOT NULL)")

    def announce(self) -> None:
        self.db.execute(f"NOTIFY {CHANNEL}")  # delivered when the transaction commits

    def wait_for_change(self, timeout: float, stop: threading.Event) -> bool:
        """A NOTIFY within `timeout` seconds; True on a timeout too (polling stays as the fallback: a
        notification lost to a dropped connection is caught at the next look)."""
        if not self._listening:
            self.db.execute(f"LISTEN {CHANNEL}")
            self._listening = True
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            for _ in self.db.notifies(timeout=min(left, 0.5), stop_after=1):
                return True
        return False

    def close(self) -> None:
        self.db.close()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return redact.text(lines[0] if lines else type(error).__name__)
