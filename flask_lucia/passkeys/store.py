"""The statements on the passkey tables (DESIGN §15): passkeys and WebAuthn challenges.

Every check-and-use is one statement (an UPDATE or DELETE with the condition in its WHERE
clause), so two requests racing with the same challenge cannot both win. Challenges only
live minutes: they are swept by the insert that adds the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from flask_lucia.core.store.storage import Storage


class PasskeyStore:
    """The passkey tables of one app, on its ``Storage`` (engine and transactions)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        tables = storage.schema
        self.passkeys = tables.passkeys
        self.challenges = tables.webauthn_challenges

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
                self.storage.record_event(conn, "passkey_added", values["user_id"])
                self.storage.session_changed(conn, user_id=values["user_id"])  # a factor change
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
            if found is not None:
                self.storage.record_event(conn, "passkey_removed", user_id)
                self.storage.session_changed(conn, user_id=user_id)  # a factor change
        return None if found is None else str(found)

    def delete_passkeys(self, user_id: Any) -> int:
        """Delete every passkey of a user; how many there were."""
        p = self.passkeys
        with self.storage.write() as conn:
            self.storage.session_changed(conn, user_id=user_id)  # a factor change
            removed = int(conn.execute(p.delete().where(p.c.user_id == user_id)).rowcount)
            if removed:
                self.storage.record_event(conn, "passkey_removed", user_id)
            return removed

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
