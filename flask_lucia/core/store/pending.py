"""The statements on pending sign-ins (DESIGN §15): a first factor proved, a second one
awaited. Taking one is one statement, so two requests racing with the same pending
sign-in cannot both win; expired rows are swept by the insert that adds the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flask_lucia.core.store.storage import Storage


class PendingStore:
    """The pending sign-ins table of one app, on its ``Storage``."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.pending = storage.schema.pending_sign_ins

    def add(
        self, digest: str, user_id: Any, client: str, expires_at: int, now: int, **extra: Any
    ) -> None:
        """Store a pending sign-in (sweeping the expired ones); ``extra``: its ``amr``,
        ``remember`` and ``setup``."""
        pending = self.pending
        with self.storage.write() as conn:
            conn.execute(pending.delete().where(pending.c.expires_at <= now))
            conn.execute(
                pending.insert().values(
                    digest=digest, user_id=user_id, client=client, expires_at=expires_at, **extra
                )
            )

    def find(self, digest: str, now: int) -> Sequence[Any] | None:
        """``(user_id, client, amr, remember, setup)`` of a live pending sign-in, or None."""
        pending = self.pending
        stmt = sa.select(
            pending.c.user_id, pending.c.client, pending.c.amr, pending.c.remember, pending.c.setup
        ).where(pending.c.digest == digest, pending.c.expires_at > now)
        with self.storage.read() as conn:
            return conn.execute(stmt).first()

    def take(self, digest: str, now: int) -> bool:
        """End a live pending sign-in; True if this call ended it (it becomes a session)."""
        pending = self.pending
        stmt = pending.delete().where(pending.c.digest == digest, pending.c.expires_at > now)
        with self.storage.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def drop(self, digest: str) -> None:
        """Forget a pending sign-in, live or not."""
        pending = self.pending
        with self.storage.write() as conn:
            conn.execute(pending.delete().where(pending.c.digest == digest))
