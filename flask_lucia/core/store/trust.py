"""The statements on trusted browsers (DESIGN §19): a browser that proved the second factor
with "trust this browser" skips it for the same user until the trust expires, the
account's factors change, or the user signs out everywhere."""

from __future__ import annotations

import sqlalchemy as sa

from flask_lucia.core.store.base import StoreBase


class TrustStatements(StoreBase):
    """Trusted browsers: add, check, forget."""

    def add_trust(self, digest: str, user_id: object, expires_at: int, now: int) -> None:
        """Trust a browser (``digest``: of its device nonce and the user) until
        ``expires_at``; an older trust of the same pair is replaced, expired rows swept."""
        trusted = self.schema.trusted_browsers
        with self.write() as conn:
            conn.execute(
                trusted.delete().where(
                    sa.or_(trusted.c.digest == digest, trusted.c.expires_at <= now)
                )
            )
            conn.execute(
                trusted.insert().values(digest=digest, user_id=user_id, expires_at=expires_at)
            )

    def is_trusted(self, digest: str, user_id: object, now: int) -> bool:
        """Whether the browser of ``digest`` is trusted by this user now."""
        trusted = self.schema.trusted_browsers
        stmt = sa.select(trusted.c.digest).where(
            trusted.c.digest == digest, trusted.c.user_id == user_id, trusted.c.expires_at > now
        )
        with self.read() as conn:
            return conn.execute(stmt).first() is not None

    def forget_trust(self, user_id: object) -> int:
        """End every trusted browser of a user; how many there were."""
        trusted = self.schema.trusted_browsers
        with self.write() as conn:
            return conn.execute(trusted.delete().where(trusted.c.user_id == user_id)).rowcount
