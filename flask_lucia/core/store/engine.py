"""The engine and what runs on it below the statements: ``create_engine`` (pool, timeouts,
SQLite pragmas), ``Precompiled`` (the request path's one select, straight on a DBAPI
cursor), and the translation of driver errors into ``LuciaError``.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from flask_lucia.core.store.watchdog import DatabaseUnresponsive, Watchdog, watchdog_grace
from flask_lucia.errors import ErrorCode, LuciaError

#: Tries of a write transaction that the database aborts for a deadlock, a serialization
#: failure or a busy lock, and the longest pause before the first retry (doubled each time,
#: each pause drawn at random below it so that the losers do not collide again).
WRITE_ATTEMPTS = 5
RETRY_PAUSE = 0.01

#: Bytes of a SQLite file read through memory mapping: no read syscall per page, so a
#: lookup among a million sessions costs about what it does among a thousand.
SQLITE_MMAP_SIZE = 1 << 30


def sqlite_pragmas(engine: Engine) -> None:
    """Foreign keys (for cascades), WAL (readers never block the writer), memory-mapped reads."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_SIZE}")
        cursor.close()


def create_engine(url: str, options: dict[str, Any], timeout: float) -> Engine:
    """An engine for ``url`` with safe defaults the app's ``options`` may override.

    On servers: ``pool_pre_ping`` (a connection the server dropped is replaced at
    checkout, not failed on), a connect timeout and a statement timeout of ``timeout``
    seconds, so a hung database frees each worker thread instead of holding it for the
    whole hang. On PostgreSQL the client bounds its own waits too, for a host that can
    no longer enforce the statement timeout (frozen, partitioned): TCP keepalives and
    ``tcp_user_timeout`` drop a connection whose host stops acknowledging, and a
    ``Watchdog`` cuts one whose host acknowledges but never answers. On SQLite,
    ``timeout`` is how long a writer waits for the lock.
    """
    options = dict(options)
    backend = sa.engine.make_url(url).get_backend_name()
    connect_args = dict(options.pop("connect_args", {}))
    if backend == "sqlite":
        connect_args.setdefault("timeout", timeout)
    else:
        options.setdefault("pool_pre_ping", True)
        if "poolclass" not in options and "pool" not in options:
            # The wait for a free pooled connection is a wait on the database too: while
            # a host hangs every connection is busy, and the queue would wait 30 s.
            options.setdefault("pool_timeout", timeout)
    if backend == "postgresql":
        seconds = max(1, math.ceil(timeout))
        milliseconds = max(1, int(timeout * 1000))
        connect_args.setdefault("connect_timeout", seconds)
        connect_args.setdefault("options", f"-c statement_timeout={milliseconds}")
        # libpq parameters: an idle pooled connection to a vanished host is found dead
        # within about the timeout, and data the host never acknowledges fails the call
        # after ``timeout`` instead of the kernel's ~15 minutes of retransmissions.
        connect_args.setdefault("keepalives", 1)
        connect_args.setdefault("keepalives_idle", seconds)
        connect_args.setdefault("keepalives_interval", max(1, math.ceil(timeout / 3)))
        connect_args.setdefault("keepalives_count", 3)
        connect_args.setdefault("tcp_user_timeout", milliseconds)
    engine = sa.create_engine(url, connect_args=connect_args, **options)
    if engine.dialect.name == "sqlite":
        sqlite_pragmas(engine)
    elif engine.dialect.name == "postgresql":
        Watchdog(timeout + watchdog_grace(timeout)).watch(engine.dialect)
    return engine


class Precompiled:
    """A select compiled once per engine and run straight on a pooled DBAPI cursor.

    For the request path: SQLAlchemy's per-execute work (cache key, execution context,
    result object) costs several times an indexed lookup, so it is paid once, here.
    """

    def __init__(self, statement: sa.Select[Any], engine: Engine) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = compiled.positiontup  # parameter order, for qmark/format styles
        self.binds = {
            name: process
            for name, bind in compiled.binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))
        }
        # Values bound in the statement itself (a subquery's LIMIT), sent with every run.
        self.fixed = {name: value for name, value in compiled.params.items() if value is not None}
        self.columns = list(statement.selected_columns)
        # Result processors need the driver's type codes (PostgreSQL numerics do): from the
        # first cursor description, then kept.
        self.results: list[tuple[int, Callable[[Any], Any]]] | None = None
        # pysqlite opens no transaction for a SELECT; elsewhere autocommit saves BEGIN/ROLLBACK.
        self.autocommit = dialect.name != "sqlite"
        # The engine's watchdog (``create_engine`` on PostgreSQL), if any: this path skips
        # the dialect methods it watches, so it arms it itself.
        self.watchdog: Watchdog | None = getattr(dialect, "lucia_watchdog", None)

    def first(self, engine: Engine, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row for ``params``, or None; failures raise ``DATABASE_FETCH_FAILED``."""
        if self.fixed:
            params = {**self.fixed, **params}
        for name, process in self.binds.items():
            params[name] = process(params[name])
        args = tuple(params[name] for name in self.positional) if self.positional else params
        try:
            row = self._run(engine, args)
        except _Disconnected:  # the pool was invalidated: one retry on a new connection
            row = self._run(engine, args, retry=False)
        if row is None or not self.results:
            return row
        values = list(row)
        for index, convert in self.results:
            values[index] = convert(values[index])
        return values

    def _run(self, engine: Engine, args: Any, *, retry: bool = True) -> Sequence[Any] | None:
        """Execute on a pooled connection. A disconnect invalidates the whole pool (every
        connection of its generation is dead too) and, if ``retry``, raises ``_Disconnected``."""
        dialect = engine.dialect
        try:
            connection = engine.raw_connection()  # the pool: checkout, pre-ping, overflow
        except (dialect.loaded_dbapi.Error, sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            raise _database_error("DATABASE_FETCH_FAILED", exc) from exc
        dbapi_connection = connection.dbapi_connection
        assert dbapi_connection is not None
        watchdog = self.watchdog
        cursor = None
        cut = False
        try:
            if self.autocommit:
                dialect.set_isolation_level(dbapi_connection, "AUTOCOMMIT")
            cursor = connection.cursor()
            token = watchdog.arm(dbapi_connection) if watchdog is not None else 0
            try:
                cursor.execute(self.sql, args)
                row: Sequence[Any] | None = cursor.fetchone()
                if self.results is None:
                    self.results = self._processors(dialect, cursor.description)
            finally:
                cut = watchdog is not None and watchdog.disarm(token)
                cursor.close()
            if cut:
                raise DatabaseUnresponsive(watchdog.message if watchdog else "")
            if self.autocommit:
                dialect.reset_isolation_level(dbapi_connection)
        except DatabaseUnresponsive as exc:
            raise _unresponsive(engine, connection, exc) from exc
        except dialect.loaded_dbapi.Error as exc:
            if cut:  # the driver's end of file after the watchdog's cut
                raise _unresponsive(engine, connection, exc) from exc
            disconnected = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if disconnected:
                # What SQLAlchemy's own execute path does on a disconnect: mark the pool's
                # current generation stale, so the next checkouts reconnect.
                engine.pool._invalidate(connection, exc)
            elif connection.is_valid:
                connection.invalidate(exc)  # never pool a connection in an unknown state
            if disconnected and retry:
                raise _Disconnected() from exc
            raise _database_error("DATABASE_FETCH_FAILED", exc) from exc
        finally:
            connection.close()
        return row

    def _processors(
        self, dialect: sa.Dialect, description: Sequence[Sequence[Any]]
    ) -> list[tuple[int, Callable[[Any], Any]]]:
        """``(index, process)`` for each result column whose type converts driver values."""
        return [
            (index, process)
            for index, (column, described) in enumerate(zip(self.columns, description, strict=True))
            if (
                process := column.type.dialect_impl(dialect).result_processor(dialect, described[1])
            )
        ]


def _unresponsive(engine: Engine, connection: Any, exc: Exception) -> LuciaError:
    """The host did not answer in time: the connection is dead, and so, most likely, is
    every other one to it (the pool's generation is invalidated). No retry: it would
    only wait again."""
    engine.pool._invalidate(connection, exc)
    return _database_error("DATABASE_FETCH_FAILED", exc)


@contextmanager
def _no_wait(conn: Connection) -> Iterator[None]:
    """On SQLite, fail at once rather than wait for the write lock (restored on exit)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi_connection: Any = conn.connection.dbapi_connection
    waited = int(dbapi_connection.execute("PRAGMA busy_timeout").fetchone()[0])
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {waited}")


class _Disconnected(Exception):
    """The database dropped the connection of a read that may be tried once more."""


def _begin_immediate(conn: Connection) -> None:
    """On SQLite, open the transaction holding the write lock (waiting for it as configured)."""
    if conn.dialect.name != "sqlite":
        return
    dbapi_connection: Any = conn.connection.dbapi_connection
    if not dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # a busy lock raises a DBAPIError: retried


#: A SQLite busy error that came after this long waited out its busy timeout: the lock
#: is held (a hung writer), and trying again would only multiply the wait.
SQLITE_WAITED = 0.5


def _transient(exc: sa.exc.DBAPIError, waited: float) -> bool:
    """True for a failure that trying the transaction again can cure: PostgreSQL's
    deadlock (40P01) and serialization failure (40001), and SQLite's busy lock when SQLite
    gave up at once (to avoid a deadlock) rather than after its busy timeout."""
    cause = exc.orig
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in ("40001", "40P01"):
        return True
    busy = isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)
    return busy and waited < SQLITE_WAITED


def _database_error(code: ErrorCode, exc: BaseException) -> LuciaError:
    """A ``DATABASE_*`` error (503) naming only the driver's exception type, never its text."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return LuciaError(code, f"database error: {type(cause).__name__}")


@contextmanager
def _errors(code: ErrorCode) -> Iterator[None]:
    """Turn driver and pool failures into a ``DATABASE_*`` LuciaError (503, not a 500)."""
    try:
        yield
    except (sa.exc.IntegrityError, sa.exc.DataError):
        raise
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        raise _database_error(code, exc) from exc
