"""Creating flask-lucia's tables and upgrading an older schema in place.

Version 1 (flask-lucia 0.1) kept ``provider_id`` and ``hashed_password`` on the users
table. Version 2 moves them to a keys table (several provider ids per user, DESIGN §12)
so that the users table can be the app's own model. Version 3 stores TOTP secrets
encrypted (DESIGN §18, ``secret_box``): its upgrade widens the column and encrypts the
base32 secrets version 2 stored, in place.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flask_lucia.core.store.schema import SCHEMA_VERSION, Tables

#: How often preparing the schema is tried again after losing a race to another process.
ATTEMPTS = 10

#: Encrypts a TOTP secret for its row: ``seal(user_id, base32 secret)``.
Seal = Callable[[Any, str], str]


class MissingKey(RuntimeError):
    """An upgrade has TOTP secrets to encrypt and no key to encrypt them with."""


def prepare(
    engine: Engine, tables: Tables, *, create: bool, seal: Seal | None = None
) -> tuple[list[str], int]:
    """Create the missing tables and upgrade an older schema in place (when ``create``);
    the names created and the version found before. Without ``create``, only checks.
    ``seal`` encrypts the TOTP secrets an older schema stored as they are; without it,
    such secrets stop the upgrade (``MissingKey``).

    Several workers may meet an empty or old database at once: they take turns, under
    an advisory lock on PostgreSQL and the write lock on SQLite; elsewhere a worker that
    loses the race tries again after a short pause.
    """
    for attempt in range(ATTEMPTS):
        try:
            with _exclusive(engine, tables) as conn:
                found = version(conn, tables)
                if not create:
                    return [], found
                return _prepare(conn, tables, found, seal), found
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def version(conn: Connection, tables: Tables) -> int:
    """The schema version of the database: 0 when empty, 1 for 0.1's tables, 2 for tables
    that hold TOTP secrets stored as they are (made by ``create_all`` or Alembic and
    never prepared by flask-lucia, so without a version row)."""
    stored = _stored_version(conn, tables)
    if stored is not None:
        return stored
    inspector = sa.inspect(conn)
    if tables.builtin_users and inspector.has_table(tables.users.name):
        names = {column["name"] for column in inspector.get_columns(tables.users.name)}
        if "provider_id" in names:
            return 1
    elif not inspector.has_table(tables.sessions.name):
        return 0
    if inspector.has_table(tables.totp.name) and _plain_secrets(conn, tables, limit=1):
        return 2
    return SCHEMA_VERSION


def _plain_secrets(conn: Connection, tables: Tables, limit: int | None = None) -> list[Any]:
    """``(user_id, secret)`` of the TOTP secrets stored as they are (base32 never has a
    "$"; an encrypted one starts with one)."""
    totp = tables.totp
    column = totp.c.secret
    stmt = sa.select(totp.c.user_id, column).where(sa.not_(column.startswith("$", autoescape=True)))
    return list(conn.execute(stmt.limit(limit)).all())


def _stored_version(conn: Connection, tables: Tables) -> int | None:
    """The version row, when the schema table has one (tables made by ``create_all`` have
    none until flask-lucia first prepares them)."""
    if not sa.inspect(conn).has_table(tables.schema.name):
        return None
    stored = conn.execute(
        sa.select(tables.schema.c.version).where(tables.schema.c.name == "flask-lucia")
    ).scalar()
    return None if stored is None else int(stored)


def _prepare(conn: Connection, tables: Tables, found: int, seal: Seal | None) -> list[str]:
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has flask-lucia schema {found}; this release knows {SCHEMA_VERSION}"
        )
    inspector = sa.inspect(conn)
    missing = [t for t in tables.all if not inspector.has_table(t.name, schema=t.schema)]
    tables.metadata.create_all(conn, tables=missing, checkfirst=False)
    for grown in (tables.sessions, tables.access_tokens, tables.pending_sign_ins):
        if grown not in missing:
            _add_missing_columns(conn, grown)
    if found == 1:
        _upgrade_1_to_2(conn, tables)
    if 0 < found < 3 and tables.totp not in missing:
        _upgrade_2_to_3(conn, tables, seal)
    if _stored_version(conn, tables) != SCHEMA_VERSION:
        table = tables.schema
        conn.execute(table.delete().where(table.c.name == "flask-lucia"))
        conn.execute(table.insert().values(name="flask-lucia", version=SCHEMA_VERSION))
    return [t.name for t in missing]


def _add_missing_columns(conn: Connection, table: sa.Table) -> None:
    """Add the columns an existing table lacks (``sessions.remember``, ``sessions.mfa`` and
    ``access_tokens.used_at`` joined schema 2 after its first databases were made, and a
    0.1 database has none; ``sessions.amr`` and the pending sign-ins' ``amr``, ``remember``
    and ``setup`` joined schema 3 with DESIGN §19); their server defaults (or NULL) fill
    the rows already there."""
    present = {column["name"] for column in sa.inspect(conn).get_columns(table.name, table.schema)}
    quoted = conn.dialect.identifier_preparer.format_table(table)
    for column in table.columns:
        if column.name not in present:
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {ddl}")


def _upgrade_1_to_2(conn: Connection, tables: Tables) -> None:
    """Move each user's provider id and password hash to a key; drop the old columns.

    Users keep their ids, so sessions and tokens (and every foreign key of the app's
    into the users table) stay as they were.
    """
    users, keys = tables.users, tables.keys
    old = sa.table(
        users.name, sa.column("id"), sa.column("provider_id"), sa.column("hashed_password")
    )
    conn.execute(
        keys.insert().from_select(
            ["id", "user_id", "hashed_password", "created_at"],
            sa.select(old.c.provider_id, old.c.id, old.c.hashed_password, sa.literal(0)),
        )
    )
    if conn.dialect.name == "sqlite":  # no DROP COLUMN of a UNIQUE column: rebuild the table
        _rebuild_sqlite_table(conn, users)
    else:
        quoted = conn.dialect.identifier_preparer.quote
        for column in ("provider_id", "hashed_password"):
            conn.exec_driver_sql(f"ALTER TABLE {quoted(users.name)} DROP COLUMN {quoted(column)}")


def _rebuild_sqlite_table(conn: Connection, table: sa.Table) -> None:
    """SQLite's documented way to change a table: a new one, the rows copied, the old one
    dropped and the new one renamed in its place (foreign keys are off meanwhile)."""
    quoted = conn.dialect.identifier_preparer.quote
    scratch = sa.MetaData()
    temporary = table.to_metadata(scratch, name=f"{table.name}__upgrade")
    for index in list(temporary.indexes):
        temporary.indexes.discard(index)
    conn.execute(sa.schema.CreateTable(temporary))
    columns = ", ".join(quoted(column.name) for column in table.columns)
    conn.exec_driver_sql(
        f"INSERT INTO {quoted(temporary.name)} ({columns}) "
        f"SELECT {columns} FROM {quoted(table.name)}"
    )
    conn.exec_driver_sql(f"DROP TABLE {quoted(table.name)}")
    conn.exec_driver_sql(f"ALTER TABLE {quoted(temporary.name)} RENAME TO {quoted(table.name)}")
    for index in table.indexes:
        index.create(conn)


def _upgrade_2_to_3(conn: Connection, tables: Tables, seal: Seal | None) -> None:
    """Widen ``totp.secret`` for ciphertexts and encrypt the base32 secrets stored as they
    are (each bound to its user). SQLite ignores a VARCHAR's length; other databases
    change the column's type."""
    totp = tables.totp
    column = totp.c.secret
    dialect = conn.dialect.name
    if dialect != "sqlite":
        table = conn.dialect.identifier_preparer.format_table(totp)
        name = conn.dialect.identifier_preparer.quote(column.name)
        kind = column.type.compile(dialect=conn.dialect)
        if dialect in ("mysql", "mariadb"):
            conn.exec_driver_sql(f"ALTER TABLE {table} MODIFY {name} {kind} NOT NULL")
        else:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {kind}")
    plain = _plain_secrets(conn, tables)
    if plain and seal is None:
        raise MissingKey(
            f"the database holds {len(plain)} TOTP secret(s) to encrypt and there is no key: "
            "set SECRET_KEY or LUCIA_SECRET_KEYS, then run 'flask lucia upgrade-db'"
        )
    for user_id, secret in plain:
        assert seal is not None
        conn.execute(
            totp.update()
            .where(totp.c.user_id == user_id, column == secret)
            .values(secret=seal(user_id, secret))
        )


@contextmanager
def _exclusive(engine: Engine, tables: Tables) -> Iterator[Connection]:
    """One transaction that no other worker preparing the same tables runs beside."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                name = b"flask-lucia:" + tables.keys.name.encode()
                key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield conn
            return
        if conn.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        # pysqlite runs DDL outside any transaction; take SQLite's write lock ourselves so
        # the check, the creation and an upgrade happen as one, and foreign keys are off
        # (outside the transaction, as SQLite requires) while a table is rebuilt.
        dbapi: Any = conn.connection.dbapi_connection
        enforced = int(conn.exec_driver_sql("PRAGMA foreign_keys").scalar() or 0)
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        isolation = dbapi.isolation_level
        dbapi.isolation_level = None
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        finally:
            dbapi.isolation_level = isolation
            conn.exec_driver_sql(f"PRAGMA foreign_keys={enforced}")
            conn.commit()


def drop(engine: Engine, tables: Tables) -> None:
    """Drop flask-lucia's own tables (never the app's user model's)."""
    tables.metadata.drop_all(engine, tables=tables.owned)
