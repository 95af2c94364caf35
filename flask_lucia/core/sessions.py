"""The seed API on sessions: create, find (the request path: one indexed query), validate,
end, expire.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from flask_lucia.core import assurance
from flask_lucia.core.base import (
    _EXPIRES,
    _LAST_USED,
    _N_SESSION,
    _S,
    _USER,
    AuthBase,
    Found,
    SessionCache,
    require_str,
)
from flask_lucia.core.clock import now_ms
from flask_lucia.core.tokens import (
    digest,
    family_digest,
    generate_random_string,
    is_well_formed,
    new_refresh_token,
    new_token,
    seal,
)
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, Tokens, from_ms


class SessionApi(AuthBase):
    """Sessions."""

    # -- sessions ---------------------------------------------------------------

    def create_session(
        self,
        user_id: Any,
        *,
        fresh: bool = False,
        user_agent: str | None = None,
        ip_address: str | None = None,
        remember: bool = True,
        mfa: bool = False,
        amr: Sequence[str] = (),
    ) -> tuple[Session, Tokens]:
        """A new session for a user, with its first token pair; with ``remember`` False its
        cookies (these and every rotation's) are browser-session cookies; ``amr``: how it
        was made (DESIGN §19), which sets its assurance level; ``mfa``: signed in with a
        second factor whatever ``amr`` says (aal 2)."""
        methods = assurance.check(amr)
        mfa = bool(mfa) or assurance.level(methods) == 2
        if not isinstance(remember, bool):
            raise TypeError(f"remember must be True or False, not {type(remember).__name__}")
        user_id = self.users.check_id(user_id)
        s, now = self.settings, now_ms()
        expires_at = now + s.max_age
        access_exp = min(now + s.access_ttl, expires_at)
        refresh_exp = min(now + s.refresh_ttl, expires_at)
        access, refresh = new_token(), new_refresh_token()
        values: dict[str, Any] = {
            "id": generate_random_string(24),
            "user_id": user_id,
            "created_at": now,
            "expires_at": expires_at,
            "idle_expires_at": refresh_exp,
            "fresh_until": now + s.fresh_for if fresh else 0,
            "last_used_at": now,
            "user_agent": None if user_agent is None else user_agent[:512],
            "ip_address": None if ip_address is None else ip_address[:64],
            "remember": remember,
            "mfa": mfa,
            "amr": assurance.encode(methods) or None,
        }
        with self.storage.write() as conn:
            self.storage.insert_session(conn, values)
            self.storage.issue_tokens(  # no refresh token was spent into it: counts as used
                conn,
                values["id"],
                (digest(access), access_exp),
                (digest(refresh), refresh_exp),
                own=seal(refresh, access, refresh),
                used_at=now,
            )
            self.storage.insert_family(conn, values["id"], family_digest(refresh), expires_at)
        session = Session(
            session_id=values["id"],
            user_id=user_id,
            expires=from_ms(access_exp),
            idle_expires=from_ms(refresh_exp),
            created_at=from_ms(now),
            fresh=fresh,
            last_used_at=from_ms(now),
            user_agent=values["user_agent"],
            ip_address=values["ip_address"],
            remember=remember,
            mfa=mfa,
            amr=methods,
        )
        return session, self._tokens(access, access_exp, refresh, refresh_exp, remember)

    def find(self, access_token: str) -> Found | None:
        """The request path: one indexed query; None for any invalid or expired token.

        The first use of a rotated pair's access token is recorded (one write per
        rotation) before the request is served: from then on a replay of the refresh
        token spent into that pair is theft, whatever the touch interval is.
        """
        if not is_well_formed(access_token):
            return None
        token_digest = digest(access_token)
        cache = self.session_cache
        row: Sequence[Any] | None = None
        mark = None if cache is None else cache.mark()
        if mark is not None:
            assert cache is not None
            row = cache.get(token_digest, now_ms())  # a hit: no database, no ORM session
        cached = row is not None
        if row is None:
            row = self.storage.validate(token_digest)
        now = now_ms()
        # access expiry, first use, then the session fields (from _S) and the user's
        if row is None or row[0] <= now or row[_S + _EXPIRES] <= now:  # token, session max age
            return None
        session = self._session(row, _S, row[0], now)
        written = None  # when this request wrote the session's last use, if it did
        if row[1] is None:
            session = self._first_use(session, token_digest, now)
            written = now
        elif now - row[_S + _LAST_USED] >= self.settings.touch_interval:
            before = session.last_used_at
            session = self._touch(session, now)
            written = None if session.last_used_at == before else now
        if mark is not None and (written is not None or not cached):
            assert cache is not None
            _keep(cache, token_digest, row, written, mark)
        if self.storage.reads_email_verified:  # the last field: 0 means not verified
            user = self._user(row[:-1], _S + _N_SESSION, attach=False)
            return Found(user, session, unverified=row[-1] == 0)
        return Found(self._user(row, _S + _N_SESSION, attach=False), session)

    def _first_use(self, session: Session, token_digest: str, now: int) -> Session:
        """Record the first use of a rotated pair (it touches the session too).

        Not skipped and not ignored like ``_touch``: a use that went unrecorded would let a
        replay of the spent refresh token pass for a lost answer. So it waits for the
        write lock like any write, and if it cannot be written the request fails (503,
        cookies kept: not a sign-out) and the next one tries again.
        """
        self.storage.first_use(session.session_id, token_digest, now)
        return replace(session, last_used_at=from_ms(now))

    def _touch(self, session: Session, now: int) -> Session:
        """Record that a session was used; at most once per interval, and never fatal."""
        try:
            self.storage.touch(session.session_id, now)
        except LuciaError:  # a read worked; a failed bookkeeping write must not fail it
            return session
        return replace(session, last_used_at=from_ms(now))

    def validate(self, access_token: str) -> Found:
        """Like ``find``, but an invalid token raises ``AUTH_INVALID_ACCESS_TOKEN``."""
        found = self.find(access_token)
        if found is None:
            raise LuciaError("AUTH_INVALID_ACCESS_TOKEN")
        return found

    def validate_access_token(self, access_token: str) -> Session:
        """The session of a valid, unexpired access token."""
        return self.validate(access_token).session

    def get_session_user(self, access_token: str) -> Any:
        """The user of a valid access token."""
        return self.users.attach(self.validate(access_token).user)

    def invalidate_session(self, access_token: str) -> None:
        """End the session of an access token; unknown tokens are ignored (idempotent)."""
        if is_well_formed(access_token):
            self.storage.delete_session_by_access(digest(access_token))

    def invalidate_all_user_sessions(self, user_id: Any) -> None:
        """End every session of a user, and every browser it trusted (DESIGN §19)."""
        user_id = self.users.check_id(user_id)
        self.storage.delete_user_sessions(user_id, event="signed_out_everywhere")
        self.storage.forget_trust(user_id)

    # -- assurance (DESIGN §19) -------------------------------------------------

    def step_up(self, session: Session, method: str) -> Session:
        """A factor was just proved in a signed-in session: it is fresh again, and a second
        factor (``otp``, ``recovery``, ``passkey``) joins its methods and makes it aal 2."""
        until = now_ms() + self.settings.fresh_for
        if assurance.level((method,)) < 2:  # a password or a provider again: fresher only
            self.storage.set_fresh_until(session.session_id, until)
            return replace(session, fresh=True)
        methods = assurance.check((*session.amr, method))
        self.storage.mark_session_mfa(session.session_id, until, assurance.encode(methods))
        return replace(session, fresh=True, mfa=True, amr=methods)

    def trust_browser(self, user_id: Any, nonce: str, ttl: int) -> None:
        """Let the browser whose device cookie holds ``nonce`` skip this user's second
        factor for ``ttl`` ms (only a digest of the pair is stored)."""
        now = now_ms()
        self.storage.add_trust(_trust_digest(user_id, nonce), user_id, now + ttl, now)

    def is_trusted(self, user_id: Any, nonce: str | None) -> bool:
        """Whether the browser whose device cookie holds ``nonce`` is trusted by this user."""
        if not nonce:
            return False
        return self.storage.is_trusted(_trust_digest(user_id, nonce), user_id, now_ms())

    def forget_trusted_browsers(self, user_id: Any) -> int:
        """End every browser trust of a user (its factors changed); how many there were."""
        return self.storage.forget_trust(self.users.check_id(user_id))

    def invalidate_user_session(self, user_id: Any, session_id: str) -> None:
        """End one session of a user (a device); other sessions are untouched."""
        self.storage.delete_user_sessions(
            self.users.check_id(user_id), session_id=require_str(session_id, "session_id", 64)
        )

    def delete_expired_user_sessions(self, user_id: Any) -> None:
        """Remove a user's expired sessions and token rows."""
        self.storage.delete_expired(now_ms(), self.users.check_id(user_id))

    def expired_batches(self, batch_size: int = 1000) -> Iterator[int]:
        """Remove every user's expired rows in short transactions; yield each batch's count.

        Throttle counters whose window has passed go too, and expired links sent by mail.
        """
        now = now_ms()
        while removed := self.storage.delete_expired_batch(now, batch_size):
            yield removed
        stale = self.storage.delete_stale_failures(now - self.throttle.identifier.window)
        if stale:
            yield stale
        for cleanup in self.cleanups:  # the features' rows: mailed links past their expiry
            removed = cleanup(now)
            if removed:
                yield removed

    def delete_expired_sessions(self) -> int:
        """Remove expired sessions and token rows of every user; the rows removed."""
        return sum(self.expired_batches())

    def get_user_sessions(self, user_id: Any) -> list[Session]:
        """A user's sessions (signed-in devices), newest first."""
        rows = self.storage.user_sessions(self.users.check_id(user_id))
        now = now_ms()
        return [self._session(row, 1, row[0] if row[0] is not None else now, now) for row in rows]


def _keep(cache: SessionCache, token_digest: str, row: Any, written: int | None, mark: int) -> None:
    """Keep a validated row as it now stands in the database (with the first use and last
    use this request wrote), at most until the token's or the session's end."""
    kept = list(row)
    if written is not None:
        kept[1] = kept[1] or written
        kept[_S + _LAST_USED] = written
    cache.keep(
        token_digest,
        kept,
        user_id=str(kept[_S + _USER]),
        session_id=str(kept[_S]),
        mark=mark,
        until=min(kept[0], kept[_S + _EXPIRES]),
    )


def _trust_digest(user_id: Any, nonce: str) -> str:
    """What a trusted browser is stored as: a digest of its device nonce and the user."""
    return hashlib.sha256(f"lucia-trust:{user_id}:{nonce}".encode()).hexdigest()
