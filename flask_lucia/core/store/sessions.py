"""The statements on sessions and their access and refresh tokens (the request path's
select is ``StoreBase._validate``, run through ``Precompiled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flask_lucia.core.store.base import StoreBase
from flask_lucia.core.store.engine import _errors, _no_wait
from flask_lucia.errors import LuciaError

#: The most rows ``delete_expired_batch`` takes per table (bound parameters per statement).
MAX_BATCH = 10_000

#: ``spent_at`` of a session's family row (see ``insert_family``): never a real spending time.
FAMILY_SPENT_AT = 0


class RefreshRow(NamedTuple):
    """One row of a session's refresh tokens."""

    digest: str
    expires_at: int
    spent_at: int | None
    successor: bytes | None


class SessionStatements(StoreBase):
    """Sessions and tokens: validate, issue, rotate, touch, end, expire."""

    def mark_session_mfa(self, session_id: str, fresh_until: int, amr: str | None) -> None:
        """Mark a session signed in with a second factor (aal 2, its methods now ``amr``),
        and fresh until ``fresh_until``."""
        sessions = self.sessions
        stmt = (
            sessions.update()
            .where(sessions.c.id == session_id)
            .values(mfa=True, fresh_until=fresh_until, amr=amr)
        )
        with self.write() as conn:
            conn.execute(stmt)
            self.session_changed(conn, session_id=session_id)

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
        self.session_changed(conn, session_id=session_id)  # the old access token dies
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
        self.session_changed(conn, session_id=session_id)  # the old access token dies
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
            self.session_changed(conn, session_id=session_id)

    def delete_session(self, conn: Connection, session_id: str) -> int:
        """Delete one session (its tokens go with it)."""
        self.session_changed(conn, session_id=session_id)
        return conn.execute(self.sessions.delete().where(self.sessions.c.id == session_id)).rowcount

    def delete_session_by_access(self, digest: str) -> str | None:
        """End the session an access token belongs to; its user id, if there was one."""
        access, sessions = self.access_tokens, self.sessions
        owner = sa.select(access.c.session_id).where(access.c.digest == digest).scalar_subquery()
        stmt = (
            sessions.delete()
            .where(sessions.c.id == owner)
            .returning(sessions.c.user_id, sessions.c.id)
        )

        def work(conn: Connection) -> Any:
            row = conn.execute(stmt).first()
            if row is not None:
                self.session_changed(conn, session_id=row[1])
            return row

        row = self.transaction(work)
        return None if row is None else str(row[0])

    def delete_user_sessions(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        keep: str | None = None,
        event: str | None = None,
    ) -> int:
        """Delete a user's sessions: all, one (``session_id``), or all but ``keep``; record
        ``event`` in the same transaction.

        The session rows are locked (deleted) before their tokens go by cascade, the order
        a refresh takes too; a deadlock or busy lock is retried, never left half done.
        """
        sessions = self.sessions
        stmt = sessions.delete().where(sessions.c.user_id == user_id)
        if session_id is not None:
            stmt = stmt.where(sessions.c.id == session_id)
        if keep is not None:
            stmt = stmt.where(sessions.c.id != keep)

        def work(conn: Connection) -> int:
            if session_id is not None:
                self.session_changed(conn, session_id=session_id)
            else:
                self.session_changed(conn, user_id=user_id)
            removed = int(conn.execute(stmt).rowcount)
            if event is not None:
                self.record_event(conn, event, user_id)
            return removed

        return self.transaction(work)

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
