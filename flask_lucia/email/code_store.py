"""Storage of the sign-in codes sent by mail (DESIGN §23): ``<prefix>email_codes``, one
row per address, so an address has one live code and a new one replaces it.

A row holds a keyed digest of the code, never the code. Trying a code first counts the
try on its row, in one statement that refuses a row that is out of tries or expired:
parallel guesses get no more checks than the budget. A right code is spent by deleting
its row (one statement: two requests cannot both spend it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from flask_lucia.core.store.storage import Storage


class CodeStore:
    """The statements on one app's sign-in codes."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.codes = storage.email_codes

    def put(
        self, conn: Connection, address: str, user_id: Any, digest: str, now: int, expires_at: int
    ) -> None:
        """Make ``digest`` the address's one live code (replacing any), with no try counted;
        ``user_id`` None: the address has no account and nothing signs in by it."""
        codes = self.codes
        values = {
            "email": address,
            "user_id": user_id,
            "digest": digest,
            "tries": 0,
            "created_at": now,
            "expires_at": expires_at,
        }
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = (postgresql if dialect == "postgresql" else sqlite).insert(codes)
            replaced = {name: insert.excluded[name] for name in values if name != "email"}
            conn.execute(
                insert.values(**values).on_conflict_do_update(
                    index_elements=[codes.c.email], set_=replaced
                )
            )
        else:  # other databases: one transaction, so the address is never without a row
            conn.execute(codes.delete().where(codes.c.email == address))
            conn.execute(codes.insert().values(**values))

    def count_try(
        self, conn: Connection, address: str, now: int, max_tries: int
    ) -> tuple[Any, str] | None:
        """Count one try on the address's code if it has tries left and has not expired:
        ``(user id or None, digest)``; None when there is no such code."""
        codes = self.codes
        stmt = (
            codes.update()
            .where(codes.c.email == address, codes.c.tries < max_tries, codes.c.expires_at > now)
            .values(tries=codes.c.tries + 1)
            .returning(codes.c.user_id, codes.c.digest)
        )
        row = conn.execute(stmt).first()
        return None if row is None else (row[0], str(row[1]))

    def spend(self, conn: Connection, address: str, digest: str) -> bool:
        """Delete the address's code if it is still ``digest``; whether it was."""
        codes = self.codes
        stmt = codes.delete().where(codes.c.email == address, codes.c.digest == digest)
        return bool(conn.execute(stmt).rowcount)

    def delete_expired(self, now: int) -> int:
        """Delete expired codes (``flask lucia cleanup``); the number removed."""
        with self.storage.write() as conn:
            return conn.execute(self.codes.delete().where(self.codes.c.expires_at <= now)).rowcount
