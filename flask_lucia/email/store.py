"""Storage of the email flows: link tokens, verified addresses and the mail counters.

Link tokens (``<prefix>email_tokens``) are stored as SHA-256 digests. Of a user's links
of one purpose only the newest works, so a new request makes the older links useless
without a write, and a link is spent by deleting it (one statement, so two clicks at
once cannot both use it). Mail counters share the throttle table under ``mail:`` keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from flask_lucia.core.store.schema import EMAIL_PROVIDER
from flask_lucia.core.store.storage import Storage

#: Link purposes, as stored.
VERIFY, RESET, CHANGE_EMAIL = "verify", "reset", "change_email"


class EmailStore:
    """The statements of the email flows, on one app's ``Storage``."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.tokens = storage.email_tokens
        self.keys = storage.keys
        tokens = self.tokens
        newer = tokens.alias("newer")
        # The link has no younger sibling: the same user and purpose, created later.
        self._newest = ~sa.exists().where(
            newer.c.user_id == tokens.c.user_id,
            newer.c.purpose == tokens.c.purpose,
            sa.or_(
                newer.c.created_at > tokens.c.created_at,
                sa.and_(
                    newer.c.created_at == tokens.c.created_at, newer.c.digest > tokens.c.digest
                ),
            ),
        )
        keys = self.keys
        self._email_keys = sa.and_(
            keys.c.id >= f"{EMAIL_PROVIDER}:", keys.c.id < f"{EMAIL_PROVIDER};"
        )

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction (``DATABASE_UPDATE_FAILED`` when the database fails)."""
        with self.storage.write() as conn:
            yield conn

    # -- link tokens --------------------------------------------------------------

    def issue(
        self,
        conn: Connection,
        digest: str,
        user_id: Any,
        purpose: str,
        email: str,
        now: int,
        expires_at: int,
    ) -> None:
        """Store a link; from now on it is the user's only working link of ``purpose``."""
        conn.execute(
            self.tokens.insert().values(
                digest=digest,
                user_id=user_id,
                purpose=purpose,
                email=email,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def _usable(self, digest: str, purpose: str, now: int) -> list[sa.ColumnElement[bool]]:
        tokens = self.tokens
        return [
            tokens.c.digest == digest,
            tokens.c.user_id.is_not(None),
            tokens.c.purpose == purpose,
            tokens.c.expires_at > now,
            self._newest,
        ]

    def peek(self, digest: str, purpose: str, now: int) -> tuple[Any, str] | None:
        """``(user id, address)`` of a link that would work now, without spending it."""
        tokens = self.tokens
        stmt = sa.select(tokens.c.user_id, tokens.c.email).where(
            *self._usable(digest, purpose, now)
        )
        with self.storage.read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (row[0], str(row[1]))

    def spend(
        self, conn: Connection, digest: str, purpose: str, now: int
    ) -> tuple[Any, str] | None:
        """Delete a working link and every other link of its user and purpose;
        ``(user id, address)``, or None when the link is unknown, spent, expired or
        superseded."""
        tokens = self.tokens
        stmt = (
            tokens.delete()
            .where(*self._usable(digest, purpose, now))
            .returning(tokens.c.user_id, tokens.c.email)
        )
        row = conn.execute(stmt).first()
        if row is None:
            return None
        user_id, email = row[0], str(row[1])
        self.drop(conn, user_id, purpose)
        return user_id, email

    def drop(self, conn: Connection, user_id: Any, purpose: str) -> None:
        """Delete a user's links of one purpose."""
        tokens = self.tokens
        conn.execute(
            tokens.delete().where(tokens.c.user_id == user_id, tokens.c.purpose == purpose)
        )

    def discard(self, conn: Connection, digest: str) -> None:
        """Delete one link (its mail never went out)."""
        conn.execute(self.tokens.delete().where(self.tokens.c.digest == digest))

    def delete_expired(self, now: int) -> int:
        """Delete expired links; the number removed."""
        with self.write() as conn:
            return conn.execute(
                self.tokens.delete().where(self.tokens.c.expires_at <= now)
            ).rowcount

    # -- email keys ---------------------------------------------------------------

    def email_key(
        self, user_id: Any, conn: Connection | None = None
    ) -> tuple[str, int | None] | None:
        """The user's first email key and when it was verified (``Storage.email_key``)."""
        return self.storage.email_key(user_id, conn)

    def owner(self, key: str) -> Any:
        """The user id of a key, or None."""
        stmt = sa.select(self.keys.c.user_id).where(self.keys.c.id == key)
        with self.storage.read() as conn:
            return conn.execute(stmt).scalar()

    def mark_verified(self, conn: Connection, user_id: Any, key: str, now: int) -> bool:
        """Record that a user's key was proved now (a first proof is kept); False when
        the user has no such key any more."""
        keys = self.keys
        stmt = (
            keys.update()
            .where(keys.c.id == key, keys.c.user_id == user_id)
            .values(email_verified_at=sa.func.coalesce(keys.c.email_verified_at, now))
        )
        self.storage.session_changed(conn, user_id=user_id)  # the request query reads it
        return bool(conn.execute(stmt).rowcount)

    def move_email(self, conn: Connection, user_id: Any, new_key: str, now: int) -> str | None:
        """Re-key the user's first email key to ``new_key``, verified now (password and
        sessions kept); a user without one gets it as a new key. The old key, if any.
        A key that another user has raises ``IntegrityError``."""
        keys = self.keys
        old = self.email_key(user_id, conn)
        self.storage.sync_identifier(conn, user_id, new_key)  # identifier_columns
        self.storage.session_changed(conn, user_id=user_id)  # its provider id may change
        if old is None:
            conn.execute(
                keys.insert().values(
                    id=new_key, user_id=user_id, created_at=now, email_verified_at=now
                )
            )
            return None
        conn.execute(
            keys.update()
            .where(keys.c.id == old[0], keys.c.user_id == user_id)
            .values(id=new_key, email_verified_at=now)
        )
        return old[0]

    def set_password(self, conn: Connection, user_id: Any, hashed: str, provider: str) -> None:
        """Give the user a new password and end every session of it: the keys that have
        a password, else its keys of ``provider``, else its first key (as
        ``Auth.update_user_password`` chooses)."""
        keys, sessions = self.keys, self.storage.sessions
        rows = conn.execute(
            sa.select(keys.c.id, keys.c.hashed_password.is_not(None))
            .where(keys.c.user_id == user_id)
            .order_by(keys.c.created_at, keys.c.id)
        ).all()
        targets = [key for key, has in rows if has]
        if not targets:
            prefix = f"{provider}:"
            targets = [key for key, _ in rows if key.startswith(prefix)] or [rows[0][0]]
        conn.execute(
            keys.update()
            .where(keys.c.user_id == user_id, keys.c.id.in_(targets))
            .values(hashed_password=hashed)
        )
        conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
        self.storage.session_changed(conn, user_id=user_id)

    # -- mail counters ------------------------------------------------------------

    def reserve(self, conn: Connection, key: str, limit: int | None, window: int, now: int) -> int:
        """Count one mail against ``key`` if it has room in its window (``limit`` None:
        always): 0 then, else the milliseconds until it has. One statement, so parallel
        requests cannot overrun it."""
        throttle = self.storage.throttle
        stale = throttle.c.window_start <= now - window
        counted = {
            "failures": sa.case((stale, 1), else_=throttle.c.failures + 1),
            "window_start": sa.case((stale, now), else_=throttle.c.window_start),
            "last_failure": now,
        }
        room = sa.true() if limit is None else sa.or_(stale, throttle.c.failures < limit)
        fresh = {"key": key, "failures": 1, "window_start": now, "last_failure": now}
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = (postgresql if dialect == "postgresql" else sqlite).insert(throttle)
            upsert = (
                insert.values(**fresh)
                .on_conflict_do_update(index_elements=[throttle.c.key], set_=counted, where=room)
                .returning(throttle.c.key)
            )
            if conn.execute(upsert).first() is not None:
                return 0
        else:  # other databases: update, else insert under a savepoint
            if conn.execute(
                throttle.update().where(throttle.c.key == key, room).values(counted)
            ).rowcount:
                return 0
            try:
                with conn.begin_nested():
                    conn.execute(throttle.insert().values(**fresh))
                return 0
            except sa.exc.IntegrityError:
                pass
        start = conn.execute(
            sa.select(throttle.c.window_start).where(throttle.c.key == key)
        ).scalar()
        return max(1, int(start or now) + window - now)

    def give_back(self, conn: Connection, keys: Sequence[str]) -> None:
        """Uncount one mail from each key (it was never sent)."""
        if not keys:
            return
        throttle = self.storage.throttle
        conn.execute(
            throttle.update()
            .where(throttle.c.key.in_(list(keys)), throttle.c.failures > 0)
            .values(failures=throttle.c.failures - 1)
        )
