"""flask-lucia's tables, their schema version, and creating and upgrading them in place.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: The schema this release reads and writes.
SCHEMA_VERSION = 3
#: How often preparing the schema is tried again after losing a race to another process.
ATTEMPTS = 10
#: The provider whose keys are email addresses (and carry ``email_verified_at``).
EMAIL_PROVIDER = "email"


class Tables:
    """Every table of one app: the users table (built-in or the app's model's) and ours."""

    def __init__(
        self,
        metadata: sa.MetaData,
        prefix: str,
        user_columns: Sequence[sa.Column[Any]] = (),
        user_table: sa.Table | None = None,
    ) -> None:
        self.metadata = metadata
        self.prefix = prefix
        self.builtin_users = user_table is None
        if user_table is None:
            user_table = sa.Table(
                f"{prefix}users",
                metadata,
                sa.Column("id", sa.String(255), primary_key=True),
                *(column._copy() for column in user_columns),
                keep_existing=True,
            )
        self.users = user_table
        self.user_pk = user_primary_key(user_table)
        self.user_data_columns = [c for c in user_table.columns if c is not self.user_pk]
        self.keys = sa.Table(
            f"{prefix}keys",
            metadata,
            sa.Column("id", sa.String(512), primary_key=True),  # "provider:identifier"
            sa.Column(
                "user_id",
                self.user_pk.type,
                sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("hashed_password", sa.String(512), nullable=True),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            # When the address of an email key was proved (a link opened); None: not yet.
            sa.Column("email_verified_at", sa.BigInteger, nullable=True),
            sa.Index(f"ix_{prefix}keys_user_id_created_at", "user_id", "created_at"),
            keep_existing=True,
        )
        self.sessions = sa.Table(
            f"{prefix}sessions",
            metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column(
                "user_id",
                self.user_pk.type,
                sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
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
            # False: "remember me" was off, so its cookies live only as long as the browser.
            sa.Column("remember", sa.Boolean, nullable=False, server_default=sa.true()),
            # Signed in with a second factor or a passkey (DESIGN §15).
            sa.Column("mfa", sa.Boolean, nullable=False, server_default=sa.false()),
            keep_existing=True,
        )
        self.access_tokens = self._token_table(
            f"{prefix}access_tokens",
            # When the token was first used (validated); None: not yet. A replay of the
            # refresh token spent into its pair is a lost answer only while it is None.
            sa.Column("used_at", sa.BigInteger, nullable=True),
        )
        self.refresh_tokens = self._token_table(
            f"{prefix}refresh_tokens",
            sa.Column("spent_at", sa.BigInteger, nullable=True),
            # The successor pair, sealed with a pad derived from this (raw) token:
            # lets a racing tab that presents it within the grace get the same pair.
            # While the token is live: its own pair, sealed the same way, handed back
            # when a storm would rotate it faster than the grace allows.
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
        self._second_factor_tables()
        # Links sent by mail (verify an address, reset a password, move to a new address):
        # only the SHA-256 digest of the token is stored; the newest of a user's links of
        # one purpose is the only one that works. A row without a user stands in for the
        # link of a reset request to an address with no account (so both cost the same);
        # it was never mailed and nothing spends it.
        self.email_tokens = sa.Table(
            f"{prefix}email_tokens",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column(
                "user_id",
                self.user_pk.type,
                sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
                nullable=True,
            ),
            sa.Column("purpose", sa.String(16), nullable=False),
            sa.Column("email", sa.String(512), nullable=False),  # the address it was sent to
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            sa.Index(f"ix_{prefix}email_tokens_user_id_purpose", "user_id", "purpose"),
            keep_existing=True,
        )
        self.schema = sa.Table(
            f"{prefix}schema",
            metadata,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            keep_existing=True,
        )

    def _user_id(self, *, primary_key: bool = False) -> sa.Column[Any]:
        """A ``user_id`` column pointing at the users table; its rows go with the user."""
        return sa.Column(
            "user_id",
            self.user_pk.type,
            sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
            nullable=False,
            primary_key=primary_key,
            index=not primary_key,
        )

    def _second_factor_tables(self) -> None:
        """TOTP secrets, recovery codes, pending sign-ins, passkeys and WebAuthn challenges
        (DESIGN §15). Codes, pending sign-ins and challenges are stored as SHA-256 digests."""
        prefix, metadata = self.prefix, self.metadata
        self.totp = sa.Table(
            f"{prefix}totp",
            metadata,
            self._user_id(primary_key=True),
            # Encrypted and bound to the row (secret_box): "$1$<key id>$<base64url>".
            sa.Column("secret", sa.String(255), nullable=False),
            sa.Column("last_step", sa.BigInteger, nullable=True),  # last accepted time step
            sa.Column("created_at", sa.BigInteger, nullable=False),
            keep_existing=True,
        )
        self.recovery_codes = sa.Table(
            f"{prefix}recovery_codes",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            self._user_id(),
            keep_existing=True,
        )
        self.pending_sign_ins = sa.Table(
            f"{prefix}pending_sign_ins",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            self._user_id(),
            sa.Column("client", sa.String(64), nullable=False),  # digest of the user agent
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )
        self.passkeys = sa.Table(
            f"{prefix}passkeys",
            metadata,
            sa.Column("id", sa.String(32), primary_key=True),  # public id, not the credential's
            sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),  # base64url
            self._user_id(),
            sa.Column("user_handle", sa.String(128), nullable=False),  # base64url, random per user
            sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE
            sa.Column("sign_count", sa.BigInteger, nullable=False),
            sa.Column("transports", sa.String(255), nullable=False),  # comma-separated
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("last_used_at", sa.BigInteger, nullable=True),
            keep_existing=True,
        )
        self.webauthn_challenges = sa.Table(
            f"{prefix}webauthn_challenges",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),  # of the challenge
            sa.Column("purpose", sa.String(16), nullable=False),  # "register" or "sign-in"
            # The session (registration) or the browser's challenge cookie (sign-in) it is for.
            sa.Column("binding", sa.String(64), nullable=False),
            sa.Column("user_handle", sa.String(128), nullable=True),  # registration only
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )

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

    @property
    def second_factor_tables(self) -> list[sa.Table]:
        """The DESIGN §15 tables that hold rows of a user (deleted with it)."""
        return [self.totp, self.recovery_codes, self.pending_sign_ins, self.passkeys]

    @property
    def owned(self) -> list[sa.Table]:
        """The tables flask-lucia owns, parents first (the app's user model is not one)."""
        users = [self.users] if self.builtin_users else []
        return [
            *users,
            self.keys,
            self.sessions,
            self.access_tokens,
            self.refresh_tokens,
            self.throttle,
            self.totp,
            self.recovery_codes,
            self.pending_sign_ins,
            self.passkeys,
            self.webauthn_challenges,
            self.email_tokens,
            self.schema,
        ]

    @property
    def all(self) -> list[sa.Table]:
        """Every table flask-lucia needs, parents first: the users table and its own."""
        return [self.users, *(t for t in self.owned if t is not self.users)]


def user_primary_key(table: sa.Table) -> sa.Column[Any]:
    """The single primary-key column of a users table; anything else is refused."""
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        found = "no primary key" if not columns else f"a {len(columns)}-column primary key"
        raise ValueError(f"user table {table.name!r} needs a one-column primary key, not {found}")
    return columns[0]


# -- creating and upgrading --------------------------------------------------------------


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
    for grown in (tables.sessions, tables.access_tokens):
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
    0.1 database has none); their server defaults (or NULL) fill the rows already there."""
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
