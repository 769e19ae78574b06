"""The registry's two databases, each a small dialect: a SQLite file (the default, embedded, nothing to
start) and a PostgreSQL URL (one registry for many machines).

A dialect says only what differs: how to connect, placeholders and column types, how a writer takes
its lock, where the migration state lives, which tables exist, and how a change is announced (SQLite is
polled through PRAGMA data_version; PostgreSQL sends NOTIFY, which servers LISTEN for). The rules,
queries and migrations are registry.py's, written once for both.

The PostgreSQL driver (psycopg 3) is imported only when a URL asks for it.
"""

from __future__ import annotations

import difflib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from . import redact
from .config import Failure, UsageError

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5
CHANNEL = "rl_registry_best"  # the NOTIFY channel: a validation that may change the best model
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Unavailable(Exception):
    """The database cannot be opened or used as a registry; the message says why, credentials masked."""


class ReadOnly(Unavailable, Failure):
    """A write to a database this user may only read: the message names the file or folder (exit 1)."""


def is_url(target: str | Path) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


# What to do about a password that a URL cannot carry as it is written.
PASSWORD_ADVICE = ("percent-encode it in the URL (a space as %20, @ as %40, / as %2F, ? as %3F, # as %23, % as %25), "
                   "or leave the password out of the URL and give it as PGPASSWORD, in a password file (PGPASSFILE) "
                   "or a service file (PGSERVICEFILE)")


def check_target(value: str | Path, origin: str) -> None:
    """Refuse (UsageError, exit 2) a database target that would not open what its writer meant, before
    anything is created: a value with `://` is a PostgreSQL URL that libpq can read, never a file name
    (`postgresq://...` would otherwise become a SQLite file in a folder `postgresq:`). `origin` says where
    the value came from ("option registry.dbPath from flag --registry-db", "TARGET"); the value is shown
    with its password masked."""
    text = str(value)
    if "://" not in text:
        return
    shown = redact.url(text)
    scheme = text.split("://", 1)[0]
    if not text.startswith(POSTGRES_SCHEMES):
        # sqlite:// is among the schemes a misspelling is matched against: `sqlit:///x.db` meant a SQLite file.
        known = [s.removesuffix("://") for s in POSTGRES_SCHEMES] + ["sqlite"]
        close = difflib.get_close_matches(scheme.lower(), known, n=1, cutoff=0.6)
        if scheme.lower() in known:  # a scheme in capitals: libpq knows only the lowercase one
            close = [scheme.lower()]
        hint = f" (did you mean {close[0]}://?)" if close else ""
        todo = ""
        if close == ["sqlite"]:
            alone = "a SQLite registry is named by its file path alone"
            hint = f" ({alone})" if scheme.lower() == "sqlite" else f" (did you mean sqlite://? {alone})"
            # As SQLAlchemy reads it: sqlite:////abs/x.db is /abs/x.db, sqlite:///x.db is x.db.
            todo = f"; give {text.split('://', 1)[1].removeprefix('/')}"
        raise UsageError(f"{origin}: {shown!r} has an unknown scheme {scheme}://{hint}; expected a SQLite file path "
                         f"or a PostgreSQL URL (postgresql://user@host:port/database){todo}")
    problem = _unreadable(text)
    if problem:
        raise UsageError(f"{origin}: {shown!r} cannot be read as libpq reads it: {problem}")


def _unreadable(url: str) -> str | None:
    """Why libpq would misread this PostgreSQL URL (and quote its password in its error), or None."""
    password = redact.password(url)
    if password:
        # libpq takes the user information up to the first "@" or "/": a password holding either, or "?" or
        # "#" (which end a URL's host part), is read as a host, a port or a database name.
        for char, name in ((" ", "a space"), ("\t", "a tab"), ("@", 'an "@"'), ("/", 'a "/"'), ("?", 'a "?"'),
                           ("#", 'a "#"')):
            if char in password:
                return f"its password holds {name}: {PASSWORD_ADVICE}"
        if re.search(r"%(?![0-9A-Fa-f]{2})", password):
            return f'its password holds a "%" that starts no percent-encoded byte: {PASSWORD_ADVICE}'
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as error:
        return f"{error} (an IPv6 host is written in brackets, [::1]:5432; a port is a number)"
    if re.search(r"\s", url):
        return "it holds a space (percent-encode it as %20)"
    return None


class Database(Protocol):
    name: str
    where: str  # the file, or the URL with its password masked: safe to print

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def begin(self) -> None: ...
    def check_writable(self) -> None: ...
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
    def lost(self, error: BaseException) -> bool: ...
    def close(self) -> None: ...


def connect(target: str | Path) -> Database:
    check_target(target, "the registry")  # every caller's last line: a URL is never taken for a file name
    return PostgreSQL(str(target)) if is_url(target) else SQLite(Path(target))


class SQLite:
    """A file beside the runs, shared by the processes of one host: WAL mode, a busy timeout, and
    short IMMEDIATE write transactions."""

    name = "SQLite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        # Why this user cannot write the file, when it cannot: it is then opened read-only, which is all a
        # reader needs, and a write says why it cannot be done.
        self.read_only: str | None = None
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise Unavailable(f"cannot create the folder {folder} for the registry {path}: {error.strerror}") from None
        if path.exists():
            self.read_only = _why_read_only(path)
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise ReadOnly(f"cannot create the registry {path}: its folder {folder.resolve()} is read-only for this "
                           "user; point registry.dbPath at a folder it may write")
        if self.read_only is None:
            self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                _retrying(lambda: self.db.execute("PRAGMA journal_mode = WAL"))
            except sqlite3.OperationalError as error:  # writing refused though the permissions allowed it
                self.db.close()
                if "readonly" not in str(error) and "unable to open" not in str(error):
                    raise Unavailable(f"{path} cannot be opened as a SQLite database ({error})") from None
                self.read_only = f"this user cannot write it ({error})"
            except sqlite3.DatabaseError as error:  # "file is not a database"
                self.db.close()
                raise Unavailable(f"{path} is not a SQLite database ({error})") from None
            else:
                self.db.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL; files are fsynced anyway
        if self.read_only is not None:
            self.db = _open_read_only(path)
        self.db.row_factory = sqlite3.Row
        self._seen = self._data_version()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params)

    def begin(self) -> None:
        if self.read_only is not None:
            raise self._refusal(self.read_only)
        try:
            _retrying(lambda: self.db.execute("BEGIN IMMEDIATE"))
        except sqlite3.OperationalError as error:
            if "readonly" in str(error):  # made read-only since it was opened
                raise self._refusal(f"this user cannot write it ({error})") from None
            raise

    def check_writable(self) -> None:
        """ReadOnly now, for a command that will write later (rl-train records its models at the end)."""
        if self.read_only is not None:
            raise self._refusal(self.read_only)

    def _refusal(self, why: str) -> ReadOnly:
        return ReadOnly(f"cannot write the registry {self.path}: {why}; a command that records, validates or "
                        "prunes needs write access to the file and its folder (SQLite writes a -wal and a -shm "
                        "file beside it), or a registry.dbPath it may write")

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

    def lost(self, error: BaseException) -> bool:
        return False  # a file does not go away under an open connection

    def close(self) -> None:
        self.db.close()


def _why_read_only(path: Path) -> str | None:
    """Why this user cannot write an existing SQLite file (None when it can): the file, or its folder, where
    a WAL database keeps its -wal and -shm files (unless both are there already, and writable)."""
    if not os.access(path, os.W_OK):
        return "the file is read-only for this user"
    folder = path.resolve().parent
    if not os.access(folder, os.W_OK | os.X_OK):
        beside = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        if not all(p.exists() and os.access(p, os.W_OK) for p in beside):
            return f"its folder {folder} is read-only for this user"
    return None


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes. SQLite reads a WAL database through its -shm file, which it must
    create when it is missing; in a folder this user cannot write, a database closed cleanly (no -wal
    left) is then opened as immutable: the file alone is the whole database. (Immutable is wrong while a
    -wal holds changes: SQLite would not read them, and would answer from an older state.)"""
    uri = f"file:{quote(str(path.resolve()))}"
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute("PRAGMA schema_version").fetchone()  # the first read opens the -shm, or fails to
        return db
    except sqlite3.OperationalError as error:
        db.close()
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise Unavailable(f"cannot read the registry {path}: this user may not write its folder, and its "
                              f"write-ahead log {wal.name} holds changes that SQLite reads only through a "
                              f"{path.name}-shm file it cannot create ({error}); ask the owner to checkpoint it "
                              f"(sqlite3 {path} 'PRAGMA wal_checkpoint(TRUNCATE)') or to let this user write "
                              "the folder") from None
    db = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as error:
        db.close()
        raise Unavailable(f"{path} is not a SQLite database ({error})") from None
    return db


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
            raise Unavailable(f"cannot connect to {self.where}: {_scrubbed(_first_line(error), url)}") from None
        self._listening = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]

    def begin(self) -> None:
        self.db.execute("BEGIN")

    def check_writable(self) -> None:
        pass  # the server decides at each write (a role's rights); its refusal says so itself

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

    def lost(self, error: BaseException) -> bool:
        """Whether `error` means the connection is gone (the server restarted, the network cut): a new
        connection may well succeed."""
        return isinstance(error, self._errors) and bool(self.db.closed or self.db.broken)

    def close(self) -> None:
        self.db.close()


def _scrubbed(message: str, url: str) -> str:
    """libpq's message with every quoted token that holds a piece of the URL's password masked: libpq quotes
    what it could not read ("unexpected spaces found in \"...\"", "failed to resolve host '...'"), and
    when it misread the URL, that may be part of the password."""
    password = redact.password(url)
    if not password:
        return message
    pieces = {password[i:i + 4] for i in range(max(len(password) - 3, 1))}

    def scrub(found: re.Match[str]) -> str:
        token = found.group(0)
        return f"{token[0]}{redact.MASK}{token[-1]}" if any(p in token for p in pieces) else token

    return re.sub(r'"[^"\n]*"|\'[^\'\n]*\'', scrub, message)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return redact.text(lines[0] if lines else type(error).__name__)
