"""The statements on the events table (``<prefix>events``): write, read newest first,
prune. An event's ``amr`` is stored as the method names joined by spaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flask_lucia.core.store.storage import Storage

#: The kinds of DESIGN §20, in the order the docs list them.
KINDS = (
    "sign_in",
    "sign_in_failed",
    "second_factor_failed",
    "new_device",
    "refresh_reuse",
    "signed_out_everywhere",
    "password_changed",
    "password_reset",
    "email_changed",
    "provider_linked",
    "provider_unlinked",
    "passkey_added",
    "passkey_removed",
    "second_factor_on",
    "second_factor_off",
    "recovery_codes_new",
    "account_deleted",
)
#: Kinds the account's own pages never show: a user that can see its page is not deleted,
#: and an ``account_deleted`` kept for the admin must not reach a new account that got the
#: same (reused integer) id.
ADMIN_ONLY = ("account_deleted",)


class Event(NamedTuple):
    """One event as it is stored and read back."""

    kind: str
    user_id: Any
    at: int  # unix ms
    device: str | None
    ip: str | None
    amr: tuple[str, ...] | None

    def values(self) -> dict[str, Any]:
        """The row to insert."""
        amr = None if self.amr is None else " ".join(self.amr)[:100]
        return {
            "kind": self.kind,
            "user_id": self.user_id,
            "at": self.at,
            "device": None if self.device is None else self.device[:100],
            "ip": None if self.ip is None else self.ip[:64],
            "amr": amr,
        }


class EventStore:
    """The events of one app, on its ``Storage``."""

    kinds = KINDS

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.events = storage.schema.events

    def write(self, conn: Connection, event: Event) -> None:
        """Insert ``event`` in ``conn``'s transaction. A deleted account's earlier events go
        with it (as its other rows do); the ``account_deleted`` event itself stays."""
        events = self.events
        if event.kind == "account_deleted":
            conn.execute(events.delete().where(events.c.user_id == event.user_id))
        conn.execute(events.insert().values(**event.values()))

    def write_many(self, found: Sequence[Event]) -> None:
        """Insert events that no change carries (a sign-in), one statement in one short
        transaction."""
        with self.storage.write() as conn:
            conn.execute(self.events.insert().values([event.values() for event in found]))

    def recent(
        self,
        user_id: Any,
        *,
        limit: int,
        before: int | None = None,
        since: int | None = None,
        kinds: Sequence[str] = (),
        hidden: Sequence[str] = ADMIN_ONLY,
    ) -> list[Event]:
        """A user's events, newest first: at most ``limit``, older than ``before``, not
        older than ``since``, of ``kinds`` (all when empty), none of ``hidden``."""
        events = self.events
        stmt = sa.select(
            events.c.kind,
            events.c.user_id,
            events.c.at,
            events.c.device,
            events.c.ip,
            events.c.amr,
        ).where(events.c.user_id == user_id)
        if before is not None:
            stmt = stmt.where(events.c.at < before)
        if since is not None:
            stmt = stmt.where(events.c.at >= since)
        if kinds:
            stmt = stmt.where(events.c.kind.in_(list(kinds)))
        if hidden:
            stmt = stmt.where(events.c.kind.not_in(list(hidden)))
        stmt = stmt.order_by(events.c.at.desc(), events.c.id.desc()).limit(limit)
        with self.storage.read() as conn:
            rows = conn.execute(stmt).all()
        return [Event(row[0], row[1], int(row[2]), row[3], row[4], _amr(row[5])) for row in rows]

    def prune(self, older_than: int) -> int:
        """Delete every event from before ``older_than`` (unix ms); how many went."""
        events = self.events
        with self.storage.write() as conn:
            return int(conn.execute(events.delete().where(events.c.at < older_than)).rowcount)


def _amr(stored: str | None) -> tuple[str, ...] | None:
    return None if not stored else tuple(stored.split(" "))
