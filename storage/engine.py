"""Engines, sessions and schema upgrades for SQLite files and PostgreSQL.

One engine and one sessionmaker per process; every unit of work runs in its own short
transaction (`with factory.begin() as session:`), so a crash loses at most the work in
flight. Errors that a user can fix (missing directory, a file that is not a database,
an unreachable server) become `StorageError` naming the setting to change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DB_ENV = "COPYHOUND_DB"
DEFAULT_DB_FILE = "copyhound.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant works; it only has to be the same in every copyhound process so that
# concurrent `upgrade()` calls on one PostgreSQL database run one after the other.
_PG_MIGRATION_LOCK = 0x636F7079  # "copy"
_HINT = f"(set --db or {DEFAULT_DB_ENV})"
# Execution option: begin this connection's transactions with BEGIN IMMEDIATE (SQLite).
SQLITE_IMMEDIATE = "copyhound_sqlite_immediate"


class StorageError(Exception):
    """A storage problem the user can act on; the message says what to fix."""


class NotFoundError(StorageError, LookupError):
    """A row that the caller referred to by id does not exist."""


def default_db_url() -> str:
    """The database from $COPYHOUND_DB, else `copyhound.db` in the working directory."""
    configured = os.environ.get(DEFAULT_DB_ENV, "").strip()
    return normalise_db_url(configured or DEFAULT_DB_FILE)


def normalise_db_url(url_or_path: str) -> str:
    """Turn a plain path into an absolute SQLite URL and pin PostgreSQL to psycopg 3.

    Absolute paths keep the database where the user meant it even when a scheduler or
    a crawl subprocess later runs from another working directory.
    """
    value = (url_or_path or "").strip()
    if not value:
        raise StorageError(f"empty database URL or path {_HINT}")
    if "://" not in value:
        path = Path(value).expanduser().resolve()
        return f"sqlite:///{path}"
    scheme, rest = value.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return value


def _safe_url(url: URL | str) -> str:
    """The URL for messages: passwords must never reach logs or terminals."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparseable database URL>"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _check_sqlite_file(path: Path) -> None:
    """Fail early on a path SQLite cannot use.

    The file itself is never opened here: closing any descriptor of a SQLite file
    releases every POSIX lock this process holds on it, including those of open
    connections, which corrupts the database under concurrent writers. A file that is
    not a database is reported by SQLite on first use (see `_storage_error`).
    """
    parent = path.parent
    if not parent.is_dir():
        raise StorageError(f"database directory does not exist: {parent} {_HINT}")
    if path.is_dir():
        raise StorageError(f"database path is a directory, not a file: {path} {_HINT}")


def make_engine(url: str) -> Engine:
    """Create the process's engine; `url` may also be a plain SQLite file path."""
    try:
        parsed = make_url(normalise_db_url(url))
    except exc.ArgumentError as err:
        raise StorageError(f"invalid database URL {url!r}: {err} {_HINT}") from err

    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            _check_sqlite_file(path)
        engine = create_engine(parsed)
        _install_sqlite_hooks(engine)
        return engine

    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    try:
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise StorageError(f"unsupported database URL {_safe_url(parsed)}: {err} {_HINT}") from err


def _install_sqlite_hooks(engine: Engine) -> None:
    """Pragmas on every connection, and an opt-in `BEGIN IMMEDIATE`.

    foreign_keys is per connection and off by default, so ON DELETE CASCADE would
    silently do nothing without it. WAL lets readers run beside one writer; the busy
    timeout makes concurrent writers (several crawl processes) wait instead of failing.

    Transactions keep sqlite3's own handling: the write transaction starts at the first
    INSERT/UPDATE/DELETE, which waits for the lock with the busy timeout, and reads
    before it hold no lock. An open read-only session therefore never blocks a crawl,
    and a read-then-write unit of work cannot hit SQLite's un-retryable "database is
    locked" on a stale read snapshot. Connections with the execution option
    `SQLITE_IMMEDIATE` instead begin with `BEGIN IMMEDIATE` (write lock up front, DDL
    inside the transaction): `upgrade()` uses that so a failed migration rolls back.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL stays consistent after a crash (a power cut may lose the
            # last commits, never corrupt); FULL would fsync every per-page commit.
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(SQLITE_IMMEDIATE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _storage_error(engine: Engine, err: exc.DBAPIError) -> StorageError:
    where = _safe_url(engine.url)
    detail = str(err.orig) if err.orig is not None else str(err)
    if engine.dialect.name == "sqlite":
        if "not a database" in detail or "malformed" in detail:
            return StorageError(f"not a SQLite database (or corrupt): {engine.url.database} {_HINT}")
        if "unable to open" in detail:
            return StorageError(f"cannot open SQLite database {engine.url.database}: {detail} {_HINT}")
    if isinstance(err, exc.OperationalError):
        return StorageError(f"cannot use database {where}: {detail.strip()} {_HINT}")
    return StorageError(f"database error on {where}: {detail.strip()}")


def alembic_config() -> Any:
    """Alembic configuration built in code: no alembic.ini has to be found on disk.

    No URL goes into it (it would carry the password); `upgrade()` hands env.py an open
    connection, and env.py falls back to `default_db_url()` for developer commands.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision`; safe to run before every command.

    Runs inside one transaction on a connection we own. On PostgreSQL an advisory lock
    serialises concurrent upgrades (several workers starting at once); on SQLite the
    `BEGIN IMMEDIATE` write lock does the same.
    """
    from alembic import command
    from alembic.util.exc import CommandError

    owned = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if owned else engine_or_url
    try:
        config = alembic_config()
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: True}) as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except exc.DBAPIError as err:
        raise _storage_error(engine, err) from err
    except CommandError as err:
        # Typically a database stamped by a newer copyhound than this one.
        raise StorageError(
            f"cannot upgrade database {_safe_url(engine.url)}: {err} "
            "(is it from a newer copyhound? upgrade copyhound or point --db/COPYHOUND_DB elsewhere)"
        ) from err
    finally:
        if owned:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in the database, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except exc.DBAPIError as err:
        raise _storage_error(engine, err) from err


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (callers hand them on)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One short transaction: commits on success, rolls back on any exception."""
    with factory.begin() as session:
        yield session
