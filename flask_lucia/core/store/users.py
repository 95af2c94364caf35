"""The statements on users and their keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flask_lucia.core.store.base import StoreBase
from flask_lucia.errors import LuciaError


class UserStatements(StoreBase):
    """Users and keys: read, create, change, delete."""

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

    def insert_user(
        self, values: dict[str, Any], keys: Sequence[str], hashed: str | None, now: int
    ) -> Any:
        """Insert a user and its keys (the first first, all with the same password) in one
        transaction; the new user's id. A unique clash says which: a key
        (``AUTH_DUPLICATE_PROVIDER_ID``) or user data.

        Rows of flask-lucia that already name the new id are orphans of an earlier user
        of that id (an app that recreated its users table without foreign keys, so ids
        came back): they are removed first, so nothing of theirs signs the new user in.
        """
        try:
            with self.write() as conn:
                result = conn.execute(self.users.insert().values(**values))
                inserted = result.inserted_primary_key
                assert inserted is not None
                user_id = inserted[0]
                # An earlier user's history is not the new one's (the events of deleted
                # accounts otherwise stay for the admin until LUCIA_ACTIVITY_KEEP).
                for table in (*self.user_rows, self.schema.events):
                    conn.execute(table.delete().where(table.c.user_id == user_id))
                conn.execute(
                    self.keys.insert(),
                    [
                        {"id": key, "user_id": user_id, "hashed_password": hashed, "created_at": t}
                        for t, key in enumerate(keys, start=now)  # their order, by time
                    ],
                )
        except sa.exc.IntegrityError:
            for key in keys:
                self._raise_duplicate(key, last=key == keys[-1])
        return user_id

    @property
    def user_rows(self) -> list[sa.Table]:
        """flask-lucia's tables whose rows belong to a user (sessions take their tokens)."""
        schema = self.schema
        return [
            self.keys,
            self.sessions,
            *schema.second_factor_tables,
            self.email_tokens,
            self.email_codes,
        ]

    def orphans(self, *, remove: bool) -> dict[str, int]:
        """Rows of flask-lucia whose user row is gone, per table (tables without any are
        left out); ``remove`` deletes them, in one transaction."""
        found: dict[str, int] = {}

        def work(conn: Connection) -> dict[str, int]:
            for table in self.user_rows:
                gone = sa.not_(sa.exists().where(self.user_pk == table.c.user_id).correlate(table))
                gone = sa.and_(table.c.user_id.is_not(None), gone)
                if remove:
                    count = conn.execute(table.delete().where(gone)).rowcount
                else:
                    count = conn.execute(sa.select(sa.func.count()).where(gone)).scalar_one()
                if count:
                    found[table.name] = int(count)
            return found

        return self.transaction(work)

    def sync_identifier(self, conn: Connection, user_id: Any, key: str) -> None:
        """Copy the identifier of ``key`` to the user column ``identifier_columns`` gives
        its provider (none: nothing to do), in the caller's transaction."""
        provider, _, identifier = key.partition(":")
        column = self.identifier_columns.get(provider)
        if column is not None:
            conn.execute(
                self.users.update().where(self.user_pk == user_id).values({column: identifier})
            )

    def update_user(self, user_id: Any, values: dict[str, Any]) -> Sequence[Any]:
        """Update a user's own columns and return its public fields."""
        try:
            with self.write() as conn:
                updated = conn.execute(
                    self.users.update().where(self.user_pk == user_id).values(**values)
                ).rowcount
                self.session_changed(conn, user_id=user_id)
        except sa.exc.IntegrityError:
            self._raise_duplicate(None)
        row = self.user(user_id) if updated else None
        if row is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return row

    def _raise_duplicate(self, key: str | None, *, last: bool = True) -> None:
        """Raise ``AUTH_DUPLICATE_PROVIDER_ID`` when ``key`` is taken; else, if ``last``,
        ``AUTH_DUPLICATE_USER_DATA`` (the clash was in the user's columns)."""
        if key is not None:
            stmt = sa.select(self.keys.c.id).where(self.keys.c.id == key)
            with self.read() as conn:
                if conn.execute(stmt).first() is not None:
                    raise LuciaError("AUTH_DUPLICATE_PROVIDER_ID") from None
        if last:
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

    def existing_keys(self, keys: Sequence[str]) -> list[str]:
        """Which of ``keys`` exist (one lookup on the primary key)."""
        if not keys:
            return []
        stmt = sa.select(self.keys.c.id).where(self.keys.c.id.in_(list(keys)))
        with self.read() as conn:
            return [str(key) for key in conn.execute(stmt).scalars()]

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

    def add_key(
        self, user_id: Any, key: str, hashed: str | None, now: int, event: str | None = None
    ) -> None:
        """Give a user one more key (and record ``event`` with it)."""
        if self.user(user_id) is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        try:
            with self.write() as conn:
                conn.execute(
                    self.keys.insert().values(
                        id=key, user_id=user_id, hashed_password=hashed, created_at=now
                    )
                )
                if event is not None:
                    self.record_event(conn, event, user_id)
                self.session_changed(conn, user_id=user_id)  # its provider id may change
        except sa.exc.IntegrityError:
            self._raise_duplicate(key)

    def remove_key(self, user_id: Any, key: str, event: str | None = None) -> None:
        """Remove one of a user's keys, never its last (``AUTH_LAST_PROVIDER_ID``); record
        ``event`` with it."""
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
            if event is not None:
                self.record_event(conn, event, user_id)
            self.session_changed(conn, user_id=user_id)  # its provider id may change

    def rename_key(self, user_id: Any, old: str, new: str) -> None:
        """Re-key: the key ``old`` of a user becomes ``new`` (password and sessions kept)."""
        keys = self.keys
        try:
            with self.write() as conn:
                renamed = conn.execute(
                    keys.update().where(keys.c.id == old, keys.c.user_id == user_id).values(id=new)
                ).rowcount
                if renamed:
                    self.sync_identifier(conn, user_id, new)
                self.session_changed(conn, user_id=user_id)
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
        self,
        user_id: Any,
        targets: Sequence[str],
        hashed: str | None,
        keep: str | None,
        event: str | None = None,
    ) -> None:
        """Set the password of a user's keys ``targets`` and end its sessions but ``keep``,
        in one transaction (with ``event``): a changed password never leaves an old session
        behind. The user's row is locked first (users, then sessions, then tokens)."""
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
            if event is not None:
                self.record_event(conn, event, user_id)
            self.session_changed(conn, user_id=user_id)

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
            self.session_changed(conn, user_id=user_id)
            conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
            conn.execute(keys.delete().where(keys.c.user_id == user_id))
            # Not left to ON DELETE CASCADE: an app's engine may not enforce it (SQLite
            # without the foreign_keys pragma, as Flask-SQLAlchemy makes it).
            mailed = (self.schema.email_tokens, self.schema.email_codes)
            for table in (*self.schema.second_factor_tables, *mailed):
                conn.execute(table.delete().where(table.c.user_id == user_id))
            deleted = conn.execute(self.users.delete().where(self.user_pk == user_id)).rowcount
            if deleted:
                self.record_event(conn, "account_deleted", user_id)
            return deleted > 0

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
