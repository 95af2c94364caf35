"""Tables and queries on SQLAlchemy Core; statements are built once per app.

Times are integer unix milliseconds: cheap to compare, identical on every database.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, NamedTuple, NoReturn, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from flask_lucia.core.store.schema import (
    EMAIL_PROVIDER,
    SCHEMA_VERSION,
    MissingKey,
    Seal,
    Tables,
    drop,
    prepare,
)
from flask_lucia.errors import ErrorCode, LuciaError

#: The most rows ``delete_expired_batch`` takes per table (bound parameters per statement).
MAX_BATCH = 10_000

#: How often a reservation is tried again when a racing server created its counter row.
_RESERVE_TRIES = 3

#: Tries of a write transaction that the database aborts for a deadlock, a serialization
#: failure or a busy lock, and the longest pause before the first retry (doubled each time,
#: each pause drawn at random below it so that the losers do not collide again).
WRITE_ATTEMPTS = 5
RETRY_PAUSE = 0.01

#: ``spent_at`` of a session's family row (see ``insert_family``): never a real spending time.
FAMILY_SPENT_AT = 0

T = TypeVar("T")

log = logging.getLogger(__name__)


class RefreshRow(NamedTuple):
    """One row of a session's refresh tokens."""

    digest: str
    expires_at: int
    spent_at: int | None
    successor: bytes | None


#: Session columns read alongside every user, in this order.
SESSION_FIELDS = (
    "id",
    "user_id",
    "created_at",
    "expires_at",
    "idle_expires_at",
    "fresh_until",
    "last_used_at",
    "user_agent",
    "ip_address",
    "remember",
    "mfa",
)


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


def watchdog_grace(timeout: float) -> float:
    """How long after the statement timeout the watchdog gives up on a call: long enough
    for a live server's own cancel (a clean error, the connection kept) to arrive first."""
    return min(1.0, timeout / 2)


#: How long a watchdog thread with nothing to watch waits before it ends (the next
#: watched call starts another).
WATCHDOG_IDLE = 30.0


class DatabaseUnresponsive(sa.exc.TimeoutError):
    """A call on a pooled connection got no answer within the watchdog's limit: its
    connection was cut (never pooled again). A ``TimeoutError``, so it maps to 503."""


class Watchdog:
    """Cuts the socket of a database call that outlives ``limit`` seconds.

    The server's ``statement_timeout`` needs a server that runs; a frozen or partitioned
    host leaves the client waiting on a socket that may stay open for ever (the kernel
    of a stopped process, or a proxy that stopped relaying, still acknowledges). The
    watchdog bounds that wait on the client: each watched call registers a deadline
    (``arm``) and withdraws it when it returns (``disarm``); one thread per engine
    sleeps until the oldest deadline, and when a call is still registered past it, shuts
    its socket down. The blocked driver then sees end of file at once and raises, and
    the connection is closed and discarded.

    A call costs two rounds of an uncontended lock and an ordered-dict insert and pop:
    no thread, no timer, no wake-up. Every deadline is now + ``limit``, so they expire in
    the order they are armed and the thread only ever looks at the oldest.
    """

    _all: ClassVar[weakref.WeakSet[Watchdog]] = weakref.WeakSet()

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._reset()
        Watchdog._all.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._calls: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, connection: Any) -> int:
        """Start watching a call on the DBAPI ``connection``; the token for ``disarm``."""
        deadline = time.monotonic() + self.limit
        with self._lock:
            token = self._next = self._next + 1
            self._calls[token] = (deadline, connection)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="flask-lucia database watchdog", daemon=True
                )
                self._thread.start()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True when the watchdog cut the connection (it is dead)."""
        with self._lock:
            return self._calls.pop(token, None) is None

    def _run(self) -> None:
        # Never notified (that would cost a thread wake-up per query when calls are rare):
        # with nothing to watch it sleeps ``limit``, and a call armed meanwhile has a
        # deadline at least that far off, so it is never looked at late.
        calls = self._calls
        idle_since = None
        with self._lock:
            while True:
                now = time.monotonic()
                if not calls:
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= WATCHDOG_IDLE:
                        self._thread = None
                        return
                    self._wake.wait(self.limit)
                    continue
                idle_since = None
                token, (deadline, connection) = next(iter(calls.items()))
                if deadline > now:
                    self._wake.wait(deadline - now)
                    continue
                del calls[token]
                failure = _cut(connection)
                self._lock.release()  # log without holding up calls
                try:
                    if failure is None:
                        log.warning("flask-lucia: %s: its connection was cut", self.message)
                    else:
                        log.warning("flask-lucia: cannot cut a database connection: %r", failure)
                finally:
                    self._lock.acquire()

    def watch(self, dialect: sa.Dialect) -> None:
        """Watch every call SQLAlchemy makes through ``dialect`` (one engine's): statements,
        commits, rollbacks (also the pool's reset on return) and the pre-ping."""
        dialect.lucia_watchdog = self  # type: ignore[attr-defined]  # for Precompiled
        dbapi_error = dialect.loaded_dbapi.OperationalError

        def watched(name: str, on_cursor: bool) -> None:
            method = getattr(dialect, name)

            def call(target: Any, *args: Any, **kwargs: Any) -> Any:
                connection = target.connection if on_cursor else target
                connection = getattr(connection, "dbapi_connection", connection)
                token = self.arm(connection)
                try:
                    return method(target, *args, **kwargs)
                finally:
                    if self.disarm(token):
                        connection.close()  # closed: the dialect sees a disconnect
                        # Raised from ``finally``: replaces the driver's end-of-file error.
                        raise dbapi_error(self.message)

            setattr(dialect, name, call)

        for name in ("do_execute", "do_execute_no_params", "do_executemany"):
            watched(name, on_cursor=True)
        for name in ("do_commit", "do_rollback"):
            watched(name, on_cursor=False)
        ping = dialect.do_ping

        def do_ping(connection: Any) -> bool:
            token = self.arm(connection)
            try:
                return ping(connection)
            finally:
                if self.disarm(token):
                    connection.close()
                    # Not a driver error: the pool would reconnect at once and wait out
                    # the connect timeout too; this fails the checkout (the pool discards
                    # the connection) within the one limit.
                    raise DatabaseUnresponsive(self.message)

        setattr(dialect, "do_ping", do_ping)  # noqa: B010

    @property
    def message(self) -> str:
        return f"the database did not answer within {self.limit:g} s"


def _cut(connection: Any) -> Exception | None:
    """Shut down a DBAPI connection's socket: a thread blocked reading it wakes with end
    of file. Shuts down a duplicate descriptor, so the driver's own is never closed here.
    Returns what prevented it, if anything."""
    try:
        duplicate = socket.socket(fileno=os.dup(connection.fileno()))
    except Exception as exc:  # whatever the driver raises, the watchdog keeps watching
        return exc
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected
    finally:
        duplicate.close()
    return None


def _watchdogs_after_fork() -> None:
    """A forked child has none of its parent's threads: start its watchdogs afresh."""
    for watchdog in list(Watchdog._all):
        watchdog._reset()


os.register_at_fork(after_in_child=_watchdogs_after_fork)


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


class Storage:
    """The tables of one app (``schema.Tables``) and every statement flask-lucia runs on them."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        tables: Tables,
        create_tables: bool,
        *,
        reads_email_verified: bool = False,
    ) -> None:
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        #: Encrypts the TOTP secrets an older schema stored as they are, when the schema
        #: is upgraded; ``init_app`` sets it from the app's keys (None: no key).
        self.seal_totp_secret: Seal | None = None
        self._bare_engine: Engine | None = None
        self._bare_lock = threading.Lock()
        self._read_engine: Engine | None = None
        self._validate_query: Precompiled | None = None
        self._lock = threading.Lock()
        self._create_tables = create_tables
        self.schema = tables
        self.metadata = tables.metadata
        self.users, self.keys, self.sessions = tables.users, tables.keys, tables.sessions
        self.access_tokens, self.refresh_tokens = tables.access_tokens, tables.refresh_tokens
        self.throttle = tables.throttle
        self.email_tokens = tables.email_tokens
        self.user_pk = tables.user_pk
        self.user_column_names = tuple(c.name for c in tables.user_data_columns)
        #: Whether the request path reads if the user's email is verified (the last field).
        self.reads_email_verified = reads_email_verified
        self._build_statements()

    def _build_statements(self) -> None:
        users, keys, sessions = self.users, self.keys, self.sessions
        access, refresh = self.access_tokens, self.refresh_tokens
        pk = self.user_pk
        # A built-in user's provider id is its first key: a correlated lookup on the
        # (user_id, created_at) index, inside the same statement.
        self.first_key = (
            sa.select(keys.c.id)
            .where(keys.c.user_id == pk)
            .order_by(keys.c.created_at, keys.c.id)
            .limit(1)
            .correlate(users)
            .scalar_subquery()
        )
        provider_id = [self.first_key.label("provider_id")] if self.schema.builtin_users else []
        self.user_fields = [pk, *provider_id] + [users.c[n] for n in self.user_column_names]
        self.session_fields = [sessions.c[name] for name in SESSION_FIELDS]
        session_user = sessions.join(users, pk == sessions.c.user_id)
        # For LUCIA_EMAIL_VERIFICATION "required" only: the verified time of the user's
        # first email key (0: not verified; NULL: no email key), on the same index.
        #: The email keys (``email:...``), on the keys table's primary key.
        self.email_keys = sa.and_(
            keys.c.id >= f"{EMAIL_PROVIDER}:", keys.c.id < f"{EMAIL_PROVIDER};"
        )
        self.email_verified_field = (
            sa.select(sa.func.coalesce(keys.c.email_verified_at, 0))
            .where(keys.c.user_id == pk, self.email_keys)
            .order_by(keys.c.created_at, keys.c.id)
            .limit(1)
            .correlate(users)
            .scalar_subquery()
        )
        verified = [self.email_verified_field] if self.reads_email_verified else []
        # The request path: token digest -> access token (expiry, first use), session and
        # user, one PK lookup.
        self._validate = (
            sa.select(
                access.c.expires_at,
                access.c.used_at,
                *self.session_fields,
                *self.user_fields,
                *verified,
            )
            .select_from(access.join(session_user, sessions.c.id == access.c.session_id))
            .where(access.c.digest == sa.bindparam("digest"))
        )
        # A refresh token's session, found by the token's digest or (a token rotated out
        # long ago) by its family's: session and user fields.
        owner = sa.select(refresh.c.session_id).where(
            refresh.c.digest.in_([sa.bindparam("digest"), sa.bindparam("family")])
        )
        self._session_by_refresh = (
            sa.select(*self.session_fields, *self.user_fields)
            .select_from(session_user)
            .where(sessions.c.id.in_(owner.scalar_subquery()))
        )
        # The same, locking the session row: the first lock every refresh takes.
        self._lock_session_by_refresh = self._session_by_refresh.with_for_update(of=sessions)
        self._refresh_rows = sa.select(
            refresh.c.digest, refresh.c.expires_at, refresh.c.spent_at, refresh.c.successor
        ).where(refresh.c.session_id == sa.bindparam("session_id"))
        self._spend_refresh = (
            refresh.update()
            .where(refresh.c.digest == sa.bindparam("b_digest"))
            .values(spent_at=sa.bindparam("b_now"), successor=sa.bindparam("b_sealed"))
        )

    @property
    def tables(self) -> list[sa.Table]:
        """Every table flask-lucia needs, parents first (the user model's table included)."""
        return self.schema.all

    # -- engine and connections -------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine, created (and the tables with it, when configured) on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = self.bare_engine
                    self.prepare(engine, create=self._create_tables)
                    self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
                    self._validate_query = Precompiled(self._validate, engine)
                    self._engine = engine
        return self._engine

    @property
    def bare_engine(self) -> Engine:
        """The engine as the factory made it, without creating any table."""
        if self._bare_engine is None:
            with self._bare_lock:
                if self._bare_engine is None:
                    self._bare_engine = self._engine_factory()
        return self._bare_engine

    def create_missing_tables(self, engine: Engine) -> list[str]:
        """Create the missing tables and upgrade an older schema; the names created.
        Safe when several processes meet an empty database at once."""
        return self.prepare(engine, create=True)[0]

    def prepare(self, engine: Engine, *, create: bool) -> tuple[list[str], int]:
        """``schema.prepare`` with database errors as ``DATABASE_UPDATE_FAILED``; refuses
        to run on a schema older than this release when it may not upgrade it."""
        try:
            created, found = prepare(engine, self.schema, create=create, seal=self.seal_totp_secret)
        except MissingKey as exc:
            raise LuciaError("DATABASE_UPDATE_FAILED", str(exc)) from exc
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            raise _database_error("DATABASE_UPDATE_FAILED", exc) from exc
        if not create and found not in (0, SCHEMA_VERSION):
            raise LuciaError(
                "DATABASE_FETCH_FAILED",
                f"the database has flask-lucia schema {found}: run 'flask lucia upgrade-db'",
            )
        return created, found

    def drop_tables(self) -> None:
        """Drop flask-lucia's own tables (never the app's user model's)."""
        with _errors("DATABASE_UPDATE_FAILED"):
            drop(self.bare_engine, self.schema)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """An autocommit connection: one round trip per statement, no BEGIN/ROLLBACK."""
        self.engine  # noqa: B018 - creates the engine and tables on first use
        assert self._read_engine is not None
        with _errors("DATABASE_FETCH_FAILED"), self._read_engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction: every write of an operation lands, or none does."""
        with _errors("DATABASE_UPDATE_FAILED"), self.engine.begin() as conn:
            yield conn

    def transaction(self, work: Callable[[Connection], T], *, immediate: bool = False) -> T:
        """Run ``work`` in one write transaction, and again when the database aborted it for
        a deadlock, a serialization failure or a busy lock (a few tries, short random pauses).

        ``work`` must only touch the database (it may run more than once). ``immediate``
        takes SQLite's write lock before the first statement, so what ``work`` reads
        first cannot change before it writes (PostgreSQL's row locks do that there).
        """
        engine = self.engine
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                with engine.begin() as conn:
                    if immediate:
                        _begin_immediate(conn)
                    return work(conn)
            except (sa.exc.IntegrityError, sa.exc.DataError):
                raise
            except sa.exc.DBAPIError as exc:
                waited = time.monotonic() - started
                if attempt == WRITE_ATTEMPTS or not _transient(exc, waited):
                    raise _database_error("DATABASE_UPDATE_FAILED", exc) from exc
            except sa.exc.TimeoutError as exc:
                raise _database_error("DATABASE_UPDATE_FAILED", exc) from exc
            time.sleep(random.uniform(0, RETRY_PAUSE * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover - the last try raised

    def dispose(self) -> None:
        """Close pooled connections (tests, forks)."""
        if self._bare_engine is not None:
            self._bare_engine.dispose()

    # -- users and keys -----------------------------------------------------------

    def user(self, user_id: Any) -> Sequence[Any] | None:
        """The user with this id (public fields only)."""
        stmt = sa.select(*self.user_fields).where(self.user_pk == user_id)
        with self.read() as conn:
            return conn.execute(stmt).first()

    def user_by_key(self, key: str) -> Sequence[Any] | None:
        """The user owning the key ``provider:identifier``, with that key's password hash
        as the last field."""
        keys = self.keys
        stmt = (
            sa.select(*self.user_fields, keys.c.hashed_password)
            .select_from(keys.join(self.users, self.user_pk == keys.c.user_id))
            .where(keys.c.id == key)
        )
        with self.read() as conn:
            return conn.execute(stmt).first()

    def insert_user(self, values: dict[str, Any], key: str, hashed: str | None, now: int) -> Any:
        """Insert a user and its first key in one transaction; the new user's id. A unique
        clash says which: the key (``AUTH_DUPLICATE_PROVIDER_ID``) or user data."""
        try:
            with self.write() as conn:
                result = conn.execute(self.users.insert().values(**values))
                inserted = result.inserted_primary_key
                assert inserted is not None
                user_id = inserted[0]
                conn.execute(
                    self.keys.insert().values(
                        id=key, user_id=user_id, hashed_password=hashed, created_at=now
                    )
                )
        except sa.exc.IntegrityError:
            self._raise_duplicate(key)
        return user_id

    def update_user(self, user_id: Any, values: dict[str, Any]) -> Sequence[Any]:
        """Update a user's own columns and return its public fields."""
        try:
            with self.write() as conn:
                updated = conn.execute(
                    self.users.update().where(self.user_pk == user_id).values(**values)
                ).rowcount
        except sa.exc.IntegrityError:
            self._raise_duplicate(None)
        row = self.user(user_id) if updated else None
        if row is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return row

    def _raise_duplicate(self, key: str | None) -> NoReturn:
        if key is not None:
            stmt = sa.select(self.keys.c.id).where(self.keys.c.id == key)
            with self.read() as conn:
                if conn.execute(stmt).first() is not None:
                    raise LuciaError("AUTH_DUPLICATE_PROVIDER_ID") from None
        raise LuciaError("AUTH_DUPLICATE_USER_DATA") from None

    def taken_columns(self, values: dict[str, Any]) -> list[str]:
        """The unique user columns whose value in ``values`` another user already has: after
        ``AUTH_DUPLICATE_USER_DATA``, which field to name ("This username is taken")."""
        users = self.users
        groups: list[Any] = [c for c in users.constraints if isinstance(c, sa.UniqueConstraint)]
        groups += [index for index in users.indexes if index.unique]
        unique = {column.name for column in users.columns if column.unique}
        unique.update(c.name for group in groups if len(group.columns) == 1 for c in group.columns)
        taken = []
        with self.read() as conn:
            for name, value in values.items():
                if name in unique and value is not None:
                    column = users.c[name]
                    if conn.execute(sa.select(column).where(column == value).limit(1)).first():
                        taken.append(name)
        return taken

    def user_keys(self, user_id: Any) -> list[tuple[str, bool]]:
        """A user's keys, first first: ``(provider id, has a password)``."""
        keys = self.keys
        stmt = (
            sa.select(keys.c.id, keys.c.hashed_password.is_not(None))
            .where(keys.c.user_id == user_id)
            .order_by(keys.c.created_at, keys.c.id)
        )
        with self.read() as conn:
            return [(str(key), bool(has)) for key, has in conn.execute(stmt)]

    def add_key(self, user_id: Any, key: str, hashed: str | None, now: int) -> None:
        """Give a user one more key."""
        if self.user(user_id) is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        try:
            with self.write() as conn:
                conn.execute(
                    self.keys.insert().values(
                        id=key, user_id=user_id, hashed_password=hashed, created_at=now
                    )
                )
        except sa.exc.IntegrityError:
            self._raise_duplicate(key)

    def remove_key(self, user_id: Any, key: str) -> None:
        """Remove one of a user's keys, never its last (``AUTH_LAST_PROVIDER_ID``)."""
        keys = self.keys
        with self.write() as conn:
            self._lock_user(conn, user_id)
            owned = conn.execute(sa.select(keys.c.id).where(keys.c.user_id == user_id)).scalars()
            owned_keys = set(owned)
            if key not in owned_keys:
                raise LuciaError("AUTH_INVALID_PROVIDER_ID")
            if len(owned_keys) == 1:
                raise LuciaError("AUTH_LAST_PROVIDER_ID")
            conn.execute(keys.delete().where(keys.c.id == key, keys.c.user_id == user_id))

    def rename_key(self, user_id: Any, old: str, new: str) -> None:
        """Re-key: the key ``old`` of a user becomes ``new`` (password and sessions kept)."""
        keys = self.keys
        try:
            with self.write() as conn:
                renamed = conn.execute(
                    keys.update().where(keys.c.id == old, keys.c.user_id == user_id).values(id=new)
                ).rowcount
        except sa.exc.IntegrityError:
            self._raise_duplicate(new)
        if not renamed:
            raise LuciaError("AUTH_INVALID_USER_ID")

    def set_key_password(self, key: str, hashed: str | None) -> None:
        """Replace one key's password hash (a rehash after sign-in)."""
        keys = self.keys
        with self.write() as conn:
            conn.execute(keys.update().where(keys.c.id == key).values(hashed_password=hashed))

    def set_password(
        self, user_id: Any, targets: Sequence[str], hashed: str | None, keep: str | None
    ) -> None:
        """Set the password of a user's keys ``targets`` and end its sessions but ``keep``,
        in one transaction: a changed password never leaves an old session behind. The
        user's row is locked first (users, then sessions, then tokens, as everywhere)."""
        keys, sessions = self.keys, self.sessions
        ending = sessions.delete().where(sessions.c.user_id == user_id)
        if keep is not None:
            ending = ending.where(sessions.c.id != keep)

        def work(conn: Connection) -> None:
            self._lock_user(conn, user_id)
            conn.execute(
                keys.update()
                .where(keys.c.user_id == user_id, keys.c.id.in_(list(targets)))
                .values(hashed_password=hashed)
            )
            conn.execute(ending)

        self.transaction(work)

    def _lock_user(self, conn: Connection, user_id: Any) -> None:
        """Hold the user's row until the transaction ends: ``FOR UPDATE`` on servers; on
        SQLite (whose reads take no lock) a no-op write, which takes the write lock."""
        pk = self.user_pk
        if conn.dialect.name == "sqlite":
            found = conn.execute(self.users.update().where(pk == user_id).values({pk: pk}))
            exists = found.rowcount > 0
        else:
            stmt = sa.select(pk).where(pk == user_id).with_for_update()
            exists = conn.execute(stmt).first() is not None
        if not exists:
            raise LuciaError("AUTH_INVALID_USER_ID")

    def referencing(self) -> list[sa.Column[Any]]:
        """Columns of the app's tables (in the metadata) that point at a user and would
        block its deletion: foreign keys without ON DELETE CASCADE or SET NULL."""
        own = set(self.schema.owned)
        found = []
        for table in self.metadata.tables.values():
            if table in own:
                continue
            for fk in table.foreign_keys:
                ondelete = (fk.ondelete or "").upper()
                if fk.column is self.user_pk and ondelete not in ("CASCADE", "SET NULL"):
                    found.append(fk.parent)
        return found

    def delete_user(self, user_id: Any) -> bool:
        """Delete a user with its keys and sessions, or nothing while the app's rows still
        point at it (``AUTH_USER_REFERENCED``). The user's row is locked first."""
        sessions, keys = self.sessions, self.keys

        def work(conn: Connection) -> bool:
            try:
                self._lock_user(conn, user_id)
            except LuciaError:  # no such user: nothing to delete
                return False
            for column in self.referencing():
                stmt = sa.select(sa.literal(1)).where(column == user_id).limit(1)
                if conn.execute(stmt).first() is not None:
                    raise LuciaError("AUTH_USER_REFERENCED")
            conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
            conn.execute(keys.delete().where(keys.c.user_id == user_id))
            # Not left to ON DELETE CASCADE: an app's engine may not enforce it (SQLite
            # without the foreign_keys pragma, as Flask-SQLAlchemy makes it).
            for table in (*self.schema.second_factor_tables, self.schema.email_tokens):
                conn.execute(table.delete().where(table.c.user_id == user_id))
            return conn.execute(self.users.delete().where(self.user_pk == user_id)).rowcount > 0

        try:
            return self.transaction(work)
        except sa.exc.IntegrityError:  # a foreign key the metadata does not know of
            raise LuciaError("AUTH_USER_REFERENCED") from None

    def email_key(
        self, user_id: Any, conn: Connection | None = None
    ) -> tuple[str, int | None] | None:
        """The user's first email key and when it was verified (None: not yet); None
        when the user has no email key."""
        keys = self.keys
        stmt = (
            sa.select(keys.c.id, keys.c.email_verified_at)
            .where(keys.c.user_id == user_id, self.email_keys)
            .order_by(keys.c.created_at, keys.c.id)
            .limit(1)
        )
        if conn is None:
            with self.read() as reader:
                row = reader.execute(stmt).first()
        else:
            row = conn.execute(stmt).first()
        return None if row is None else (str(row[0]), row[1])

    def mark_session_mfa(self, session_id: str, fresh_until: int) -> None:
        """Mark a session signed in with a second factor, and fresh until ``fresh_until``."""
        sessions = self.sessions
        stmt = (
            sessions.update()
            .where(sessions.c.id == session_id)
            .values(mfa=True, fresh_until=fresh_until)
        )
        with self.write() as conn:
            conn.execute(stmt)

    # -- throttling -------------------------------------------------------------

    def failures(self, keys: Sequence[str]) -> list[Sequence[Any]]:
        """``(key, failures, window_start, last_failure)`` of the keys that have failed."""
        throttle = self.throttle
        stmt = sa.select(
            throttle.c.key, throttle.c.failures, throttle.c.window_start, throttle.c.last_failure
        ).where(throttle.c.key.in_(list(keys)))
        with self.read() as conn:
            return list(conn.execute(stmt).all())

    def reserve(self, admits: Mapping[str, sa.ColumnElement[bool]], now: int, window: int) -> bool:
        """Count one attempt against every key whose row ``admits`` it, in one transaction;
        if any key does not, count none and return False.

        Checking a key and counting on it are one UPDATE, so racing requests cannot
        both pass on the same count (PostgreSQL re-checks the condition on the row a
        concurrent update left). Keys are taken in sorted order, so two reservations
        never wait on each other's rows. A window older than ``window`` restarts.
        """
        throttle = self.throttle
        stale = throttle.c.window_start <= now - window
        counted = {
            "failures": sa.case((stale, 1), else_=throttle.c.failures + 1),
            "window_start": sa.case((stale, now), else_=throttle.c.window_start),
            "last_failure": now,
        }
        for _ in range(_RESERVE_TRIES):
            try:
                with self.write() as conn:
                    for key in sorted(admits):
                        update = throttle.update().where(throttle.c.key == key, admits[key])
                        if conn.execute(update.values(**counted)).rowcount:
                            continue
                        found = sa.select(throttle.c.key).where(throttle.c.key == key)
                        if conn.execute(found).first() is not None:
                            raise _NotAdmitted  # rolls back what this call counted
                        conn.execute(
                            throttle.insert().values(
                                key=key, failures=1, window_start=now, last_failure=now
                            )
                        )
                return True
            except _NotAdmitted:
                return False
            except sa.exc.IntegrityError:  # another server inserted a key first: count on it
                continue
        return False

    def forgive(self, clear: Sequence[str], give_back: Sequence[str]) -> None:
        """After a success: forget the ``clear`` keys' failures, and take back the one
        attempt counted against each ``give_back`` key."""
        throttle = self.throttle
        with self.write() as conn:
            if clear:
                conn.execute(throttle.delete().where(throttle.c.key.in_(list(clear))))
            for key in give_back:
                conn.execute(
                    throttle.update()
                    .where(throttle.c.key == key, throttle.c.failures > 0)
                    .values(failures=throttle.c.failures - 1)
                )

    # -- sessions and tokens ----------------------------------------------------

    def validate(self, digest: str) -> Sequence[Any] | None:
        """Access token expiry and first use, session fields and user fields for a token
        digest."""
        self.engine  # noqa: B018 - creates the engine, and the query with it, on first use
        assert self._read_engine is not None and self._validate_query is not None
        return self._validate_query.first(self._read_engine, {"digest": digest})

    def refresh_state(
        self, conn: Connection, digest: str, family: str, *, lock: bool
    ) -> tuple[Sequence[Any], dict[str, RefreshRow]] | None:
        """The session and user fields of the session a refresh token (``digest``) or its
        family (``family``) belongs to, and every refresh row of that session by digest.

        With ``lock`` the session row is locked first: every refresh and every ending of a
        session locks the session row before any token row, so they cannot deadlock.
        """
        statement = self._lock_session_by_refresh if lock else self._session_by_refresh
        row = conn.execute(statement, {"digest": digest, "family": family}).first()
        if row is None:
            return None
        found = conn.execute(self._refresh_rows, {"session_id": row[0]})
        return row, {r.digest: RefreshRow(*r) for r in found}

    def access_token(self, conn: Connection, digest: str) -> tuple[int, int | None] | None:
        """The expiry and first use of a live access token, by digest; None: no such token."""
        access = self.access_tokens
        stmt = sa.select(access.c.expires_at, access.c.used_at).where(access.c.digest == digest)
        row = conn.execute(stmt).first()
        return None if row is None else (row[0], row[1])

    def reissue_access(
        self, conn: Connection, session_id: str, access: tuple[str, int], refresh: str, own: bytes
    ) -> None:
        """Give a session a new access token (digest, expiry) beside its live refresh token
        (digest), whose own pair is sealed anew (``own``); the session is locked."""
        access_tokens, refresh_tokens = self.access_tokens, self.refresh_tokens
        conn.execute(access_tokens.delete().where(access_tokens.c.session_id == session_id))
        conn.execute(
            access_tokens.insert().values(
                digest=access[0], session_id=session_id, expires_at=access[1]
            )
        )
        conn.execute(
            refresh_tokens.update().where(refresh_tokens.c.digest == refresh).values(successor=own)
        )

    def spend_refresh(self, conn: Connection, digest: str, now: int, sealed: bytes) -> None:
        """Mark a refresh token spent at ``now`` with its sealed successor (session locked)."""
        conn.execute(self._spend_refresh, {"b_digest": digest, "b_now": now, "b_sealed": sealed})

    def delete_refresh(self, conn: Connection, digests: Sequence[str]) -> None:
        """Delete refresh rows by digest (spent ones no longer needed, or a retired successor)."""
        if digests:
            table = self.refresh_tokens
            conn.execute(table.delete().where(table.c.digest.in_(list(digests))))

    def insert_family(self, conn: Connection, session_id: str, family: str, expires: int) -> None:
        """Record a session's token family: a refresh row keyed by the family's digest.

        It never refreshes (no token has that digest); an unknown refresh token of this
        family is one rotated out long ago, so presenting it is reuse.
        """
        conn.execute(
            self.refresh_tokens.insert().values(
                digest=family, session_id=session_id, expires_at=expires, spent_at=FAMILY_SPENT_AT
            )
        )

    def insert_session(self, conn: Connection, values: dict[str, Any]) -> None:
        """Insert a session row (the user must exist)."""
        try:
            conn.execute(self.sessions.insert().values(**values))
        except sa.exc.IntegrityError:
            raise LuciaError("AUTH_INVALID_USER_ID") from None

    def issue_tokens(
        self,
        conn: Connection,
        session_id: str,
        access: tuple[str, int],
        refresh: tuple[str, int],
        *,
        own: bytes | None = None,
        used_at: int | None = None,
    ) -> None:
        """Replace the session's access tokens with one new (digest, expiry); add a refresh
        with its own pair sealed (``own``). ``used_at``: a pair that no refresh token was
        spent into (a sign-in) counts as used, so its first use costs no write."""
        access_tokens = self.access_tokens
        conn.execute(access_tokens.delete().where(access_tokens.c.session_id == session_id))
        conn.execute(
            access_tokens.insert().values(
                digest=access[0], session_id=session_id, expires_at=access[1], used_at=used_at
            )
        )
        conn.execute(
            self.refresh_tokens.insert().values(
                digest=refresh[0], session_id=session_id, expires_at=refresh[1], successor=own
            )
        )
        conn.execute(
            self.sessions.update()
            .where(self.sessions.c.id == session_id)
            .values(idle_expires_at=refresh[1])
        )

    def touch(self, session_id: str, now: int) -> None:
        """Set a session's last-used time, unless that means waiting for another writer.

        Bookkeeping must not hold up a request: SQLite has one write lock, which a long
        transaction (a cleanup batch) may hold, so there the update gives up at once
        rather than wait out the busy timeout; the next request tries again.
        """
        sessions = self.sessions
        update = sessions.update().where(sessions.c.id == session_id).values(last_used_at=now)
        with (
            _errors("DATABASE_UPDATE_FAILED"),
            self.engine.connect() as conn,
            _no_wait(conn),
            conn.begin(),
        ):
            conn.execute(update)

    def first_use(self, session_id: str, digest: str, now: int) -> None:
        """Record the first use of a session's new access token (and the session's use).

        Once per rotation. Unlike ``touch`` it waits for the write lock like any write:
        skipping it would leave a used pair looking unused, and a replay of the refresh
        token spent into it would pass for a lost answer. The session row is written
        before the token row, the order every refresh takes.
        """
        sessions, access = self.sessions, self.access_tokens

        def work(conn: Connection) -> None:
            conn.execute(
                sessions.update().where(sessions.c.id == session_id).values(last_used_at=now)
            )
            conn.execute(
                access.update()
                .where(access.c.digest == digest, access.c.used_at.is_(None))
                .values(used_at=now)
            )

        self.transaction(work)

    def set_fresh_until(self, session_id: str, until: int) -> None:
        """Mark a session fresh (re-authenticated) until ``until``."""
        sessions = self.sessions
        with self.write() as conn:
            conn.execute(
                sessions.update().where(sessions.c.id == session_id).values(fresh_until=until)
            )

    def delete_session(self, conn: Connection, session_id: str) -> int:
        """Delete one session (its tokens go with it)."""
        return conn.execute(self.sessions.delete().where(self.sessions.c.id == session_id)).rowcount

    def delete_session_by_access(self, digest: str) -> str | None:
        """End the session an access token belongs to; its user id, if there was one."""
        access, sessions = self.access_tokens, self.sessions
        owner = sa.select(access.c.session_id).where(access.c.digest == digest).scalar_subquery()
        stmt = sessions.delete().where(sessions.c.id == owner).returning(sessions.c.user_id)
        row = self.transaction(lambda conn: conn.execute(stmt).first())
        return None if row is None else str(row[0])

    def delete_user_sessions(
        self, user_id: str, *, session_id: str | None = None, keep: str | None = None
    ) -> int:
        """Delete a user's sessions: all, one (``session_id``), or all but ``keep``.

        The session rows are locked (deleted) before their tokens go by cascade, the order
        a refresh takes too; a deadlock or busy lock is retried, never left half done.
        """
        sessions = self.sessions
        stmt = sessions.delete().where(sessions.c.user_id == user_id)
        if session_id is not None:
            stmt = stmt.where(sessions.c.id == session_id)
        if keep is not None:
            stmt = stmt.where(sessions.c.id != keep)
        return self.transaction(lambda conn: conn.execute(stmt).rowcount)

    def delete_expired(self, now: int, user_id: str) -> int:
        """Delete one user's expired sessions and token rows; the rows removed."""
        sessions, access, refresh = self.sessions, self.access_tokens, self.refresh_tokens
        owned = sa.select(sessions.c.id).where(sessions.c.user_id == user_id)
        expired = sa.or_(sessions.c.expires_at <= now, sessions.c.idle_expires_at <= now)
        dead = sa.select(sessions.c.id).where(sessions.c.user_id == user_id, expired)

        def work(conn: Connection) -> int:
            conn.execute(dead.with_for_update())  # sessions before their tokens, as everywhere
            removed = 0
            for table in (access, refresh):
                stale = sa.or_(table.c.expires_at <= now, table.c.session_id.in_(dead))
                removed += conn.execute(
                    table.delete().where(table.c.session_id.in_(owned), stale)
                ).rowcount
            removed += conn.execute(
                sessions.delete().where(sessions.c.user_id == user_id, expired)
            ).rowcount
            return removed

        return self.transaction(work)

    def delete_stale_failures(self, before: int) -> int:
        """Forget throttle counters whose last failure is older than ``before``."""
        with self.write() as conn:
            return conn.execute(
                self.throttle.delete().where(self.throttle.c.last_failure < before)
            ).rowcount

    def user_sessions(self, user_id: str) -> list[Sequence[Any]]:
        """A user's sessions with their current access expiry, newest first."""
        sessions, access = self.sessions, self.access_tokens
        stmt = (
            sa.select(sa.func.max(access.c.expires_at), *self.session_fields)
            .select_from(sessions.outerjoin(access, access.c.session_id == sessions.c.id))
            .where(sessions.c.user_id == user_id)
            .group_by(*self.session_fields)
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
        )
        with self.read() as conn:
            return list(conn.execute(stmt).all())

    def delete_expired_batch(self, now: int, limit: int) -> int:
        """Delete at most ``limit`` expired sessions and ``limit`` expired token rows per
        table in one short transaction; the rows removed (call it until it returns 0).

        Every lookup is an index range scan cut off by ``limit``, so a batch costs the
        same with a thousand rows or ten million. A dead session's tokens are deleted
        before it, so no row leaves by cascade uncounted.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
            raise ValueError(f"limit must be an int from 1 to {MAX_BATCH}")
        sessions, access, refresh = self.sessions, self.access_tokens, self.refresh_tokens

        def work(conn: Connection) -> int:
            removed = 0
            dead: dict[str, None] = {}
            for column in (sessions.c.expires_at, sessions.c.idle_expires_at):
                # Locked before their tokens are touched: the order every writer takes.
                found = conn.execute(
                    sa.select(sessions.c.id).where(column <= now).limit(limit).with_for_update()
                )
                dead.update(dict.fromkeys(found.scalars()))
            ids = list(dead)[:limit]
            for table in (access, refresh):
                if ids:
                    removed += conn.execute(
                        table.delete().where(table.c.session_id.in_(ids))
                    ).rowcount
                stale = conn.execute(
                    sa.select(table.c.digest).where(table.c.expires_at <= now).limit(limit)
                ).scalars()
                digests = list(stale)
                if digests:
                    removed += conn.execute(
                        table.delete().where(table.c.digest.in_(digests))
                    ).rowcount
            if ids:
                removed += conn.execute(sessions.delete().where(sessions.c.id.in_(ids))).rowcount
            return removed

        return self.transaction(work)


class _NotAdmitted(Exception):
    """A throttle key refused an attempt: undo the reservation's other counts."""


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
