"""The statements on the second-factor tables (DESIGN §15): TOTP secrets, recovery codes,
pending sign-ins, passkeys and WebAuthn challenges.

Every check-and-use is one statement (an UPDATE or DELETE with the condition in its WHERE
clause), so two requests racing with the same code, pending sign-in or challenge cannot
both win. Rows that only live minutes (pending sign-ins, challenges) are swept by the
insert that adds the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from flask_lucia.core.store.storage import Storage


class MfaStorage:
    """The second-factor tables of one app, on its ``Storage`` (engine and transactions)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        tables = storage.schema
        self.totp = tables.totp
        self.codes = tables.recovery_codes
        self.pending = tables.pending_sign_ins
        self.passkeys = tables.passkeys
        self.challenges = tables.webauthn_challenges

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
            return bool(conn.execute(totp.delete().where(totp.c.user_id == user_id)).rowcount)

    def mark_session_mfa(self, session_id: str, fresh_until: int) -> None:
        """Mark a session signed in with a second factor, and fresh until ``fresh_until``."""
        sessions = self.storage.sessions
        stmt = (
            sessions.update()
            .where(sessions.c.id == session_id)
            .values(mfa=True, fresh_until=fresh_until)
        )
        with self.storage.write() as conn:
            conn.execute(stmt)

    # -- pending sign-ins -------------------------------------------------------------

    def add_pending(
        self, digest: str, user_id: Any, client: str, expires_at: int, now: int
    ) -> None:
        """Store a pending sign-in (sweeping the expired ones)."""
        pending = self.pending
        with self.storage.write() as conn:
            conn.execute(pending.delete().where(pending.c.expires_at <= now))
            conn.execute(
                pending.insert().values(
                    digest=digest, user_id=user_id, client=client, expires_at=expires_at
                )
            )

    def find_pending(self, digest: str, now: int) -> Sequence[Any] | None:
        """``(user_id, client)`` of a live pending sign-in, or None."""
        pending = self.pending
        stmt = sa.select(pending.c.user_id, pending.c.client).where(
            pending.c.digest == digest, pending.c.expires_at > now
        )
        with self.storage.read() as conn:
            return conn.execute(stmt).first()

    def take_pending(self, digest: str, now: int) -> bool:
        """End a live pending sign-in; True if this call ended it (it becomes a session)."""
        pending = self.pending
        stmt = pending.delete().where(pending.c.digest == digest, pending.c.expires_at > now)
        with self.storage.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def drop_pending(self, digest: str) -> None:
        """Forget a pending sign-in, live or not."""
        pending = self.pending
        with self.storage.write() as conn:
            conn.execute(pending.delete().where(pending.c.digest == digest))

    # -- passkeys ---------------------------------------------------------------------

    def user_handle(self, user_id: Any) -> str | None:
        """The WebAuthn user handle a user's passkeys carry, or None without passkeys."""
        passkeys = self.passkeys
        stmt = sa.select(passkeys.c.user_handle).where(passkeys.c.user_id == user_id).limit(1)
        with self.storage.read() as conn:
            found = conn.execute(stmt).scalar()
        return None if found is None else str(found)

    def add_passkey(self, values: Mapping[str, Any]) -> bool:
        """Store a passkey; False when its credential is registered already."""
        try:
            with self.storage.write() as conn:
                conn.execute(self.passkeys.insert().values(**values))
        except sa.exc.IntegrityError:
            return False
        return True

    def passkey_by_credential(self, credential_id: str) -> Sequence[Any] | None:
        """``(id, user_id, user_handle, public_key, sign_count)`` of a registered credential."""
        p = self.passkeys
        stmt = sa.select(p.c.id, p.c.user_id, p.c.user_handle, p.c.public_key, p.c.sign_count)
        with self.storage.read() as conn:
            return conn.execute(stmt.where(p.c.credential_id == credential_id)).first()

    def user_passkeys(self, user_id: Any) -> list[Sequence[Any]]:
        """A user's passkeys, oldest first: ``(id, name, credential_id, transports,
        created_at, last_used_at)``."""
        p = self.passkeys
        stmt = (
            sa.select(
                p.c.id,
                p.c.name,
                p.c.credential_id,
                p.c.transports,
                p.c.created_at,
                p.c.last_used_at,
            )
            .where(p.c.user_id == user_id)
            .order_by(p.c.created_at, p.c.id)
        )
        with self.storage.read() as conn:
            return list(conn.execute(stmt).all())

    def use_passkey(self, passkey_id: str, old_count: int, new_count: int, now: int) -> bool:
        """Record a sign-in with a passkey: its new sign count and last use, if the count is
        still the one the check saw (a racing sign-in with the same count loses)."""
        p = self.passkeys
        stmt = (
            p.update()
            .where(p.c.id == passkey_id, p.c.sign_count == old_count)
            .values(sign_count=new_count, last_used_at=now)
        )
        with self.storage.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def rename_passkey(self, user_id: Any, passkey_id: str, name: str) -> bool:
        """Rename one of a user's passkeys; False when it is not theirs."""
        p = self.passkeys
        stmt = p.update().where(p.c.id == passkey_id, p.c.user_id == user_id).values(name=name)
        with self.storage.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def delete_passkey(self, user_id: Any, passkey_id: str) -> str | None:
        """Delete one of a user's passkeys; its name, or None when it is not theirs."""
        p = self.passkeys
        stmt = p.delete().where(p.c.id == passkey_id, p.c.user_id == user_id).returning(p.c.name)
        with self.storage.write() as conn:
            found = conn.execute(stmt).scalar()
        return None if found is None else str(found)

    def delete_passkeys(self, user_id: Any) -> int:
        """Delete every passkey of a user; how many there were."""
        p = self.passkeys
        with self.storage.write() as conn:
            return int(conn.execute(p.delete().where(p.c.user_id == user_id)).rowcount)

    # -- WebAuthn challenges ------------------------------------------------------------

    def add_challenge(
        self,
        digest: str,
        purpose: str,
        binding: str,
        user_handle: str | None,
        expires_at: int,
        now: int,
    ) -> None:
        """Store a challenge's digest for one ceremony (sweeping the expired ones)."""
        c = self.challenges
        with self.storage.write() as conn:
            conn.execute(c.delete().where(c.c.expires_at <= now))
            conn.execute(
                c.insert().values(
                    digest=digest,
                    purpose=purpose,
                    binding=binding,
                    user_handle=user_handle,
                    expires_at=expires_at,
                )
            )

    def take_challenge(
        self, digest: str, purpose: str, binding: str, now: int
    ) -> tuple[str | None] | None:
        """Use up a live challenge issued for this purpose and binding; ``(user_handle,)``
        if this call took it, else None (unknown, used, expired, or another's)."""
        c = self.challenges
        stmt = (
            c.delete()
            .where(
                c.c.digest == digest,
                c.c.purpose == purpose,
                c.c.binding == binding,
                c.c.expires_at > now,
            )
            .returning(c.c.user_handle)
        )
        with self.storage.write() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (row[0],)
