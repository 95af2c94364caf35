"""The statements on the TOTP tables (DESIGN §15): TOTP secrets and recovery codes.

Every check-and-use is one statement (an UPDATE or DELETE with the condition in its WHERE
clause), so two requests racing with the same code, pending sign-in or challenge cannot
both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flask_lucia.core.store.storage import Storage


class MfaStorage:
    """The TOTP tables of one app, on its ``Storage`` (engine and transactions)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        tables = storage.schema
        self.totp = tables.totp
        self.codes = tables.recovery_codes

    # -- TOTP and recovery codes ----------------------------------------------------

    def totp_row(self, user_id: Any) -> Sequence[Any] | None:
        """``(sealed secret, last_step)`` of a user's TOTP, or None when it is off."""
        totp = self.totp
        stmt = sa.select(totp.c.secret, totp.c.last_step).where(totp.c.user_id == user_id)
        with self.storage.read() as conn:
            return conn.execute(stmt).first()

    def enable_totp(
        self, user_id: Any, secret: str, step: int, now: int, digests: Sequence[str]
    ) -> bool:
        """Store a confirmed secret (sealed by ``secret_box``; its first code's step already
        spent) and the recovery code digests, in one transaction; False when the user has
        TOTP already."""
        try:
            with self.storage.write() as conn:
                conn.execute(
                    self.totp.insert().values(
                        user_id=user_id, secret=secret, last_step=step, created_at=now
                    )
                )
                conn.execute(self.codes.delete().where(self.codes.c.user_id == user_id))
                conn.execute(
                    self.codes.insert(), [{"digest": d, "user_id": user_id} for d in digests]
                )
                self.storage.record_event(conn, "second_factor_on", user_id)
                self.storage.session_changed(conn, user_id=user_id)  # a factor change
        except sa.exc.IntegrityError:
            return False
        return True

    def spend_step(self, user_id: Any, step: int) -> bool:
        """Accept a code of time step ``step`` if no code of it or a later step was: the
        check and the record are one UPDATE (no replay, even by a racing request)."""
        totp = self.totp
        stmt = (
            totp.update()
            .where(
                totp.c.user_id == user_id,
                sa.or_(totp.c.last_step.is_(None), totp.c.last_step < step),
            )
            .values(last_step=step)
        )
        with self.storage.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def reseal_totp(self, user_id: Any, old: str, new: str) -> bool:
        """Store a secret sealed again under the newest key, if the row still holds the
        ciphertext it was opened from (a racing reseal or a new setup wins)."""
        totp = self.totp
        stmt = totp.update().where(totp.c.user_id == user_id, totp.c.secret == old)
        with self.storage.write() as conn:
            return bool(conn.execute(stmt.values(secret=new)).rowcount)

    def spend_recovery_code(self, user_id: Any, digest: str) -> bool:
        """Use a recovery code up: True if this call deleted it."""
        codes = self.codes
        stmt = codes.delete().where(codes.c.digest == digest, codes.c.user_id == user_id)
        with self.storage.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def replace_recovery_codes(self, user_id: Any, digests: Sequence[str]) -> bool:
        """A new set of recovery codes for a user with TOTP on (the old ones stop working);
        False when TOTP is off."""
        codes, totp = self.codes, self.totp
        with self.storage.write() as conn:
            found = sa.select(totp.c.user_id).where(totp.c.user_id == user_id)
            if conn.execute(found).first() is None:
                return False
            conn.execute(codes.delete().where(codes.c.user_id == user_id))
            conn.execute(codes.insert(), [{"digest": d, "user_id": user_id} for d in digests])
            self.storage.record_event(conn, "recovery_codes_new", user_id)
        return True

    def recovery_codes_left(self, user_id: Any) -> int:
        """How many unused recovery codes a user has."""
        codes = self.codes
        stmt = sa.select(sa.func.count()).select_from(codes).where(codes.c.user_id == user_id)
        with self.storage.read() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def disable_totp(self, user_id: Any) -> bool:
        """Remove a user's TOTP secret and recovery codes; True if TOTP was on."""
        totp, codes = self.totp, self.codes
        with self.storage.write() as conn:
            conn.execute(codes.delete().where(codes.c.user_id == user_id))
            self.storage.session_changed(conn, user_id=user_id)  # a factor change
            was_on = bool(conn.execute(totp.delete().where(totp.c.user_id == user_id)).rowcount)
            if was_on:
                self.storage.record_event(conn, "second_factor_off", user_id)
            return was_on
