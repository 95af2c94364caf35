"""``StoreBase``: one app's tables, the statements built once for it, and its engine and
connections (reads in autocommit, writes in one transaction, retried when the database
aborts them). The statement families (``users``, ``sessions``, ``throttle``) build on it.

Times are integer unix milliseconds: cheap to compare, identical on every database.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flask_lucia.core.store.engine import (
    RETRY_PAUSE,
    WRITE_ATTEMPTS,
    Precompiled,
    _begin_immediate,
    _database_error,
    _errors,
    _transient,
)
from flask_lucia.core.store.schema import EMAIL_PROVIDER, SCHEMA_VERSION, Tables
from flask_lucia.core.store.upgrade import MissingKey, Seal, drop, prepare
from flask_lucia.errors import LuciaError

T = TypeVar("T")

#: Writes an event about an account inside the transaction of the change it records:
#: ``(conn, kind, user_id)`` (DESIGN §20; the activity feature registers one).
EventWriter = Callable[[Connection, str, Any], None]

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
    "amr",
)


class SessionChange(NamedTuple):
    """What a write changed that a validated session (the request query's row) may hold:
    one session (``session_id``), a user's sessions and fields (``user_id``), or, with
    neither, anything."""

    user_id: str | None = None
    session_id: str | None = None


class SessionChangeListener(Protocol):
    """Told of every change to a session or its user (the session cache, DESIGN §24)."""

    def changing(self, conn: Connection, change: SessionChange) -> None:
        """Inside the writing transaction (publish it in that transaction)."""

    def changed(self, change: SessionChange) -> None:
        """Once that transaction ended, committed or not (forget what it named)."""


class StoreBase:
    """The tables of one app (``schema.Tables``), its statements and its connections."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        tables: Tables,
        create_tables: bool,
        *,
        reads_email_verified: bool = False,
        identifier_columns: Mapping[str, str] | None = None,
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
        #: Called by every change to an account with its transaction's connection, so the
        #: change and its event commit together (or neither does).
        self.event_writers: list[EventWriter] = []
        self.email_codes = tables.email_codes
        self.user_pk = tables.user_pk
        self.user_column_names = tuple(c.name for c in tables.user_data_columns)
        #: Whether the request path reads if the user's email is verified (the last field).
        self.reads_email_verified = reads_email_verified
        #: ``{provider: user column}``: columns that hold the identifier of a key.
        self.identifier_columns = dict(identifier_columns or {})
        #: Registration point: who hears of session and user changes (``session_changed``).
        self.session_listeners: list[SessionChangeListener] = []
        self._changing: dict[int, list[SessionChange]] = {}
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
        provider_id = [] if self.schema.mapped else [self.first_key.label("provider_id")]
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

    def record_event(self, conn: Connection, kind: str, user_id: Any) -> None:
        """Record ``kind`` (an event of DESIGN §20) for ``user_id`` in ``conn``'s transaction."""
        for write in self.event_writers:
            write(conn, kind, user_id)

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
        """``upgrade.prepare`` with database errors as ``DATABASE_UPDATE_FAILED``; refuses
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
        with _errors("DATABASE_UPDATE_FAILED"), self._begin(self.engine) as conn:
            yield conn

    @contextmanager
    def _begin(self, engine: Engine) -> Iterator[Connection]:
        """``engine.begin()``, after which the session listeners hear what it changed."""
        changes: list[SessionChange] = []
        try:
            with engine.begin() as conn:
                self._changing[id(conn)] = changes
                try:
                    yield conn
                finally:
                    del self._changing[id(conn)]
        finally:
            for change in changes:
                for listener in self.session_listeners:
                    listener.changed(change)

    def session_changed(
        self, conn: Connection, *, user_id: Any = None, session_id: str | None = None
    ) -> None:
        """Called by every write, in its transaction, that ends or changes a session or a
        field of its user the request query reads: listeners publish it there (so it is
        seen exactly when it commits) and forget it once the transaction is over."""
        if not self.session_listeners:
            return
        change = SessionChange(None if user_id is None else str(user_id), session_id)
        for listener in self.session_listeners:
            listener.changing(conn, change)
        pending = self._changing.get(id(conn))
        if pending is not None:
            pending.append(change)
        else:  # a transaction not begun here: forget it now (the listener did at once too)
            for listener in self.session_listeners:
                listener.changed(change)

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
                with self._begin(engine) as conn:
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
