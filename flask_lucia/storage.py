"""Tables and queries on SQLAlchemy Core; statements are built once per app.

Times are integer unix milliseconds: cheap to compare, identical on every database.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, NoReturn, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .errors import ErrorCode, LuciaError

#: The most rows ``delete_expired_batch`` takes per table (bound parameters per statement).
MAX_BATCH = 10_000

#: Tries of a write transaction that the database aborts for a deadlock, a serialization
#: failure or a busy lock, and the longest pause before the first retry (doubled each time,
#: each pause drawn at random below it so that the losers do not collide again).
WRITE_ATTEMPTS = 5
RETRY_PAUSE = 0.01

#: ``spent_at`` of a session's family row (see ``insert_family``): never a real spending time.
FAMILY_SPENT_AT = 0

T = TypeVar("T")


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
        self.columns = list(statement.selected_columns)
        # Result processors need the driver's type codes (PostgreSQL numerics do): from the
        # first cursor description, then kept.
        self.results: list[tuple[int, Callable[[Any], Any]]] | None = None
        # pysqlite opens no transaction for a SELECT; elsewhere autocommit saves BEGIN/ROLLBACK.
        self.autocommit = dialect.name != "sqlite"

    def first(self, engine: Engine, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row for ``params``, or None; failures raise ``DATABASE_FETCH_FAILED``."""
        for name, process in self.binds.items():
            params[name] = process(params[name])
        args = tuple(params[name] for name in self.positional) if self.positional else params
        dialect = engine.dialect
        try:
            connection = engine.raw_connection()  # the pool: checkout, pre-ping, overflow
        except (dialect.loaded_dbapi.Error, sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            raise _database_error("DATABASE_FETCH_FAILED", exc) from exc
        dbapi_connection = connection.dbapi_connection
        assert dbapi_connection is not None
        try:
            if self.autocommit:
                dialect.set_isolation_level(dbapi_connection, "AUTOCOMMIT")
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, args)
                row = cursor.fetchone()
                if self.results is None:
                    self.results = self._processors(dialect, cursor.description)
            finally:
                cursor.close()
            if self.autocommit:
                dialect.reset_isolation_level(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # Never pool a connection in an unknown state: a dead or autocommit one.
            connection.invalidate(exc)
            raise _database_error("DATABASE_FETCH_FAILED", exc) from exc
        finally:
            connection.close()
        if row is None or not self.results:
            return row
        values = list(row)
        for index, convert in self.results:
            values[index] = convert(values[index])
        return values

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


class Storage:
    """The four tables of one app and every statement flask-lucia runs on them."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        metadata: sa.MetaData,
        prefix: str,
        user_columns: Sequence[sa.Column[Any]],
        create_tables: bool,
    ) -> None:
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None
        self._validate_query: Precompiled | None = None
        self._lock = threading.Lock()
        self._create_tables = create_tables
        self.metadata = metadata
        user_id_type = sa.String(255)

        self.users = sa.Table(
            f"{prefix}users",
            metadata,
            sa.Column("id", user_id_type, primary_key=True),
            sa.Column("provider_id", sa.String(512), nullable=False, unique=True),
            sa.Column("hashed_password", sa.String(512), nullable=True),
            *(column._copy() for column in user_columns),
            keep_existing=True,
        )
        self.sessions = sa.Table(
            f"{prefix}sessions",
            metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column(
                "user_id",
                user_id_type,
                sa.ForeignKey(self.users.c.id, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            sa.Column("idle_expires_at", sa.BigInteger, nullable=False, index=True),
            sa.Column("fresh_until", sa.BigInteger, nullable=False),
            sa.Column("last_used_at", sa.BigInteger, nullable=True),
            sa.Column("user_agent", sa.String(512), nullable=True),
            sa.Column("ip_address", sa.String(64), nullable=True),
            keep_existing=True,
        )
        self.access_tokens = self._token_table(f"{prefix}access_tokens")
        self.refresh_tokens = self._token_table(
            f"{prefix}refresh_tokens",
            sa.Column("spent_at", sa.BigInteger, nullable=True),
            # The successor pair, sealed with a pad derived from this (raw) token:
            # lets a racing tab that presents it within the grace get the same pair.
            sa.Column("successor", sa.LargeBinary(64), nullable=True),
        )
        # Failed sign-ins per key ("id:<provider id>" or "ip:<address>"), shared by servers.
        self.throttle = sa.Table(
            f"{prefix}throttle",
            metadata,
            sa.Column("key", sa.String(600), primary_key=True),
            sa.Column("failures", sa.Integer, nullable=False),
            sa.Column("window_start", sa.BigInteger, nullable=False),
            sa.Column("last_failure", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )
        self.user_column_names = tuple(c.name for c in user_columns)
        self._build_statements()

    def _token_table(self, name: str, *extra: sa.Column[Any]) -> sa.Table:
        """A token table: SHA-256 digest as key, owning session, expiry, and ``extra``."""
        return sa.Table(
            name,
            self.metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column(
                "session_id",
                sa.String(64),
                sa.ForeignKey(self.sessions.c.id, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            *extra,
            keep_existing=True,
        )

    def _build_statements(self) -> None:
        users, sessions = self.users, self.sessions
        access, refresh = self.access_tokens, self.refresh_tokens
        self.user_fields = [users.c.id, users.c.provider_id] + [
            users.c[name] for name in self.user_column_names
        ]
        self.session_fields = [sessions.c[name] for name in SESSION_FIELDS]
        session_user = sessions.join(users, users.c.id == sessions.c.user_id)
        # The request path: token digest -> access token, session and user, one PK lookup.
        self._validate = (
            sa.select(access.c.expires_at, *self.session_fields, *self.user_fields)
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
        """Every table flask-lucia owns, parents first."""
        return [self.users, self.sessions, self.access_tokens, self.refresh_tokens, self.throttle]

    # -- engine and connections -------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine, created (and the tables with it) on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = self._engine_factory()
                    if self._create_tables:
                        with _errors("DATABASE_UPDATE_FAILED"):
                            self.metadata.create_all(
                                engine,
                                tables=self.tables,
                            )
                    self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
                    self._validate_query = Precompiled(self._validate, engine)
                    self._engine = engine
        return self._engine

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
            try:
                with engine.begin() as conn:
                    if immediate:
                        _begin_immediate(conn)
                    return work(conn)
            except (sa.exc.IntegrityError, sa.exc.DataError):
                raise
            except sa.exc.DBAPIError as exc:
                if attempt == WRITE_ATTEMPTS or not _transient(exc):
                    raise _database_error("DATABASE_UPDATE_FAILED", exc) from exc
            except sa.exc.TimeoutError as exc:
                raise _database_error("DATABASE_UPDATE_FAILED", exc) from exc
            time.sleep(random.uniform(0, RETRY_PAUSE * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover - the last try raised

    def dispose(self) -> None:
        """Close pooled connections (tests, forks)."""
        if self._engine is not None:
            self._engine.dispose()

    # -- users ------------------------------------------------------------------

    def user(self, user_id: str) -> Sequence[Any] | None:
        """The user with this id (public fields only)."""
        stmt = sa.select(*self.user_fields).where(self.users.c.id == user_id)
        with self.read() as conn:
            return conn.execute(stmt).first()

    def user_with_hash(self, provider_id: str) -> Sequence[Any] | None:
        """The user with this provider id, with the password hash as the last field."""
        stmt = sa.select(*self.user_fields, self.users.c.hashed_password).where(
            self.users.c.provider_id == provider_id
        )
        with self.read() as conn:
            return conn.execute(stmt).first()

    def insert_user(self, values: dict[str, Any]) -> None:
        """Insert a user; a unique clash says which (provider id or user data)."""
        try:
            with self.write() as conn:
                conn.execute(self.users.insert().values(**values))
        except sa.exc.IntegrityError:
            self._raise_duplicate(values)

    def update_user(self, user_id: str, values: dict[str, Any]) -> Sequence[Any]:
        """Update a user's row and return its public fields."""
        stmt = (
            self.users.update()
            .where(self.users.c.id == user_id)
            .values(**values)
            .returning(*self.user_fields)
        )
        try:
            with self.write() as conn:
                row = conn.execute(stmt).first()
        except sa.exc.IntegrityError:
            self._raise_duplicate(values)
        if row is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return row

    def _raise_duplicate(self, values: dict[str, Any]) -> NoReturn:
        provider_id = values.get("provider_id")
        if provider_id is not None:
            stmt = sa.select(self.users.c.id).where(self.users.c.provider_id == provider_id)
            with self.read() as conn:
                if conn.execute(stmt).first() is not None:
                    raise LuciaError("AUTH_DUPLICATE_PROVIDER_ID") from None
        raise LuciaError("AUTH_DUPLICATE_USER_DATA") from None

    def set_password(self, user_id: str, hashed: str | None, keep: str | None) -> Sequence[Any]:
        """Change a user's password hash and end its sessions but ``keep``, in one transaction.

        Either both land or neither does: no changed password with the old sessions alive.
        """
        users, sessions = self.users, self.sessions
        update = (
            users.update()
            .where(users.c.id == user_id)
            .values(hashed_password=hashed)
            .returning(*self.user_fields)
        )
        ending = sessions.delete().where(sessions.c.user_id == user_id)
        if keep is not None:
            ending = ending.where(sessions.c.id != keep)

        def work(conn: Connection) -> Sequence[Any]:
            row = conn.execute(update).first()  # locks the user row first: users, then sessions
            if row is None:
                raise LuciaError("AUTH_INVALID_USER_ID")
            conn.execute(ending)
            return row

        return self.transaction(work)

    def delete_user(self, user_id: str) -> bool:
        """Delete a user and (explicitly, whatever the FK setting) its sessions."""
        users, sessions = self.users, self.sessions

        def work(conn: Connection) -> bool:
            # Lock order users, sessions, tokens, as everywhere: the user row first.
            conn.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update())
            conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
            return conn.execute(users.delete().where(users.c.id == user_id)).rowcount > 0

        return self.transaction(work)

    # -- throttling -------------------------------------------------------------

    def failures(self, keys: Sequence[str]) -> list[Sequence[Any]]:
        """``(key, failures, window_start, last_failure)`` of the keys that have failed."""
        throttle = self.throttle
        stmt = sa.select(
            throttle.c.key, throttle.c.failures, throttle.c.window_start, throttle.c.last_failure
        ).where(throttle.c.key.in_(list(keys)))
        with self.read() as conn:
            return list(conn.execute(stmt).all())

    def record_failure(self, key: str, now: int, window: int) -> None:
        """Count one failure for ``key`` atomically; a window older than ``window`` restarts."""
        throttle = self.throttle
        stale = throttle.c.window_start <= now - window
        update = (
            throttle.update()
            .where(throttle.c.key == key)
            .values(
                failures=sa.case((stale, 1), else_=throttle.c.failures + 1),
                window_start=sa.case((stale, now), else_=throttle.c.window_start),
                last_failure=now,
            )
        )
        with self.write() as conn:
            if conn.execute(update).rowcount:
                return
        try:
            with self.write() as conn:
                conn.execute(
                    throttle.insert().values(
                        key=key, failures=1, window_start=now, last_failure=now
                    )
                )
        except sa.exc.IntegrityError:  # another server inserted it first: count on that row
            with self.write() as conn:
                conn.execute(update)

    def clear_failures(self, key: str) -> None:
        """Forget a key's failures (after a successful sign-in)."""
        with self.write() as conn:
            conn.execute(self.throttle.delete().where(self.throttle.c.key == key))

    # -- sessions and tokens ----------------------------------------------------

    def validate(self, digest: str) -> Sequence[Any] | None:
        """Access token expiry, session fields and user fields for a token digest."""
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

    def access_expiry(self, conn: Connection, digest: str) -> int | None:
        """The expiry of a live access token, by digest."""
        stmt = sa.select(self.access_tokens.c.expires_at).where(
            self.access_tokens.c.digest == digest
        )
        return conn.execute(stmt).scalar()

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
    ) -> None:
        """Replace the session's access tokens with one new (digest, expiry); add a refresh."""
        access_tokens = self.access_tokens
        conn.execute(access_tokens.delete().where(access_tokens.c.session_id == session_id))
        conn.execute(
            access_tokens.insert().values(
                digest=access[0], session_id=session_id, expires_at=access[1]
            )
        )
        conn.execute(
            self.refresh_tokens.insert().values(
                digest=refresh[0], session_id=session_id, expires_at=refresh[1]
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


def _begin_immediate(conn: Connection) -> None:
    """On SQLite, open the transaction holding the write lock (waiting for it as configured)."""
    if conn.dialect.name != "sqlite":
        return
    dbapi_connection: Any = conn.connection.dbapi_connection
    if not dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # a busy lock raises a DBAPIError: retried


def _transient(exc: sa.exc.DBAPIError) -> bool:
    """True for a failure that trying the transaction again can cure: PostgreSQL's
    deadlock (40P01) and serialization failure (40001), SQLite's busy lock."""
    cause = exc.orig
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in ("40001", "40P01"):
        return True
    return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)


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
