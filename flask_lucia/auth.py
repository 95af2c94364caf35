"""The seed API (Lucia's, in Python names) over storage, tokens and passwords.

One ``Auth`` per app lives in ``app.extensions["lucia"]``; the ``Lucia`` object
delegates to the current app's. Every failure is a ``LuciaError``; wrong types
and malformed values are ``TypeError``/``ValueError`` raised before any write.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy.engine import Connection

from . import signals
from .config import Settings
from .cookies import clearing_cookies, token_cookies
from .errors import LuciaError
from .passwords import PasswordHasher
from .storage import FAMILY_SPENT_AT, SESSION_FIELDS, RefreshRow, Storage
from .throttle import Throttle
from .tokens import (
    digest,
    family_digest,
    generate_random_string,
    is_well_formed,
    new_refresh_token,
    new_token,
    seal,
    unseal,
)
from .types import Session, Tokens, User, from_ms

_N_SESSION = len(SESSION_FIELDS)
#: Offsets within the session fields: owner, absolute expiry, idle expiry.
_USER, _EXPIRES, _IDLE, _LAST_USED = (
    SESSION_FIELDS.index(name)
    for name in ("user_id", "expires_at", "idle_expires_at", "last_used_at")
)
#: Spent refresh rows a session keeps: the latest (a lost answer, reuse of the predecessor)
#: and, while within the grace, two more for tabs that raced twice. With the live token and
#: the family row, a session has at most SPENT_KEPT + 2 refresh rows however fast it rotates.
SPENT_KEPT = 3
#: How many tokens a grace-period replay may open on its way to the live pair: as many as
#: there are spent rows, and one more for a live token whose access token has expired.
_MAX_CHAIN = SPENT_KEPT + 1


class Found(NamedTuple):
    """A validated session with its user (and new tokens when it was just rotated)."""

    user: User
    session: Session
    tokens: Tokens | None = None


class Reused(NamedTuple):
    """A refresh that found a stolen token and revoked its session."""

    session_id: str
    user_id: str


class Pair(NamedTuple):
    """A refresh that ends with a live pair: the session and user row, tokens, expiries."""

    row: Sequence[Any]
    access: str
    access_exp: int
    refresh: str
    refresh_exp: int


class Step(enum.Enum):
    """What presenting a refresh token does, judged from its session's refresh rows."""

    ROTATE = "rotate"  # the live token: spend it into a new pair
    FOLLOW = "follow"  # spent within the grace: the pair its spending made (racing tabs)
    RECOVER = "recover"  # spent after the grace, successor never used: a lost answer
    REUSED = "reused"  # any other token of the session: stolen, the session is revoked
    EXPIRED = "expired"  # past its own expiry: refused, nothing else happens


def now_ms() -> int:
    """The current time as unix milliseconds."""
    return int(time.time() * 1000)


def require_str(value: object, name: str, max_length: int = 255) -> str:
    """``value`` as a non-empty str of at most ``max_length``; errors name the argument."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{name} must be at most {max_length} characters")
    return value


class Auth:
    """One app's authentication: settings, storage and hasher, and the seed API on them."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        hasher: PasswordHasher,
        throttle: Throttle,
        generate_user_id: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.hasher = hasher
        self.throttle = throttle
        self._generate_user_id = generate_user_id or (lambda: generate_random_string(15))
        self._columns = {name: storage.users.c[name] for name in storage.user_column_names}

    # -- rows to values ---------------------------------------------------------

    def _user(self, row: Sequence[Any], start: int = 0) -> User:
        values = tuple(row[start:])
        data = dict(zip(self.storage.user_column_names, values[2:], strict=False))
        return User(values[0], values[1], MappingProxyType(data))

    def _session(self, row: Sequence[Any], start: int, expires: int, now: int) -> Session:
        sid, uid, created, _, idle, fresh_until, last_used, agent, ip = row[
            start : start + _N_SESSION
        ]
        return Session(
            session_id=sid,
            user_id=uid,
            expires=from_ms(expires),
            idle_expires=from_ms(idle),
            created_at=from_ms(created),
            fresh=fresh_until > now,
            last_used_at=None if last_used is None else from_ms(last_used),
            user_agent=agent,
            ip_address=ip,
        )

    def _tokens(self, access: str, access_exp: int, refresh: str, refresh_exp: int) -> Tokens:
        now = now_ms()
        cookies = token_cookies(
            self.settings,
            access,
            max(0, (access_exp - now) // 1000),
            refresh,
            max(0, (refresh_exp - now) // 1000),
            self.cookie_secure(),
        )
        return Tokens(access, refresh, cookies)

    def cookie_secure(self) -> bool:
        """``Secure`` cookies unless configured off, or automatic in debug and testing."""
        if self.settings.cookie_secure is not None:
            return bool(self.settings.cookie_secure)
        return not (current_app.debug or current_app.testing)

    def clearing_cookies(self) -> tuple[str, str]:
        """``Set-Cookie`` values that delete both auth cookies."""
        return clearing_cookies(self.settings, self.cookie_secure())

    # -- input checks -----------------------------------------------------------

    def provider_id(self, provider: object, identifier: object) -> str:
        """``"provider:identifier"``, after checking both parts."""
        provider = require_str(provider, "provider", 64)
        if ":" in provider:
            raise ValueError("provider must not contain ':'")
        identifier = require_str(identifier, "identifier", self.settings.identifier_max_length)
        return f"{provider}:{identifier}"

    def check_user_data(self, data: object, *, partial: bool) -> dict[str, Any]:
        """Validate ``user_data`` against the app's user columns; raise before any write."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise TypeError(f"user_data must be a dict, not {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in self._columns)
        if unknown:
            known = ", ".join(self._columns) or "none"
            raise ValueError(f"unknown user_data keys: {', '.join(unknown)} (columns: {known})")
        for name, value in data.items():
            _check_value(self._columns[name], value)
        if not partial:
            for name, column in self._columns.items():
                required = not column.nullable and column.default is None
                if required and column.server_default is None and name not in data:
                    raise ValueError(f"user_data is missing the required column {name!r}")
        return dict(data)

    # -- users ------------------------------------------------------------------

    def create_user(
        self,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        user_data: Mapping[str, Any] | None = None,
    ) -> User:
        """Create a user keyed by ``provider:identifier``, with an optional password."""
        provider_id = self.provider_id(provider, identifier)
        data = self.check_user_data(user_data, partial=False)
        hashed = None if password is None else self.hasher.hash(password)
        user_id = self._generate_user_id()
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 255:
            raise TypeError("generate_user_id must return a non-empty str of at most 255 chars")
        self.storage.insert_user(
            {"id": user_id, "provider_id": provider_id, "hashed_password": hashed, **data}
        )
        user = self.get_user(user_id)
        signals.send(signals.user_created, user=user)
        return user

    def authenticate_user(
        self, provider: str, identifier: str, password: str, *, client_address: str | None = None
    ) -> User:
        """The user whose password this is; throttled, and unknown users cost a full hash."""
        provider_id = self.provider_id(provider, identifier)
        self.hasher.normalize(password)
        keys, now = self.throttle.keys(provider_id, client_address), now_ms()
        self.throttle.check(keys, now)  # before any hashing
        row = self.storage.user_with_hash(provider_id)
        verdict = self.hasher.verify(None if row is None else row[-1], password)
        if row is None or not verdict.ok:
            self.throttle.failed(keys, now)
            raise LuciaError("AUTH_INVALID_PROVIDER_ID" if row is None else "AUTH_INVALID_PASSWORD")
        self.throttle.succeeded(provider_id)
        user = self._user(tuple(row[:-1]))
        if verdict.needs_rehash:
            rehashed = self.hasher.hash(password, new=False)
            self.storage.update_user(user.user_id, {"hashed_password": rehashed})
            signals.send(signals.password_rehashed, user=user)
        return user

    def reauthenticate(
        self, session: Session, password: str, *, client_address: str | None = None
    ) -> Session:
        """Confirm the password of a session's user and make that session fresh (no new one)."""
        user = self.get_user(session.user_id)
        provider, _, identifier = user.provider_id.partition(":")
        try:
            self.authenticate_user(provider, identifier, password, client_address=client_address)
        except LuciaError as error:
            if error.code == "AUTH_INVALID_PROVIDER_ID":  # re-keyed meanwhile
                raise LuciaError("AUTH_INVALID_PASSWORD") from None
            raise
        self.storage.set_fresh_until(session.session_id, now_ms() + self.settings.fresh_for)
        return replace(session, fresh=True)

    def get_user(self, user_id: str) -> User:
        """The user with this id."""
        row = self.storage.user(require_str(user_id, "user_id"))
        if row is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return self._user(row)

    def get_user_by_provider_id(self, provider: str, identifier: str) -> User:
        """The user keyed by ``provider:identifier``."""
        row = self.storage.user_with_hash(self.provider_id(provider, identifier))
        if row is None:
            raise LuciaError("AUTH_INVALID_PROVIDER_ID")
        return self._user(tuple(row[:-1]))

    def get_session_user(self, access_token: str) -> User:
        """The user of a valid access token."""
        return self.validate(access_token).user

    def update_user_data(self, user_id: str, data: Mapping[str, Any]) -> User:
        """Change some of the app's user columns."""
        require_str(user_id, "user_id")
        values = self.check_user_data(data, partial=True)
        if not values:
            return self.get_user(user_id)
        return self._user(self.storage.update_user(user_id, values))

    def update_user_password(
        self, user_id: str, password: str | None, *, keep_session: str | None = None
    ) -> User:
        """Set (or with None, remove) a password; ends every session but ``keep_session``.

        One transaction: the new password never lands while the other sessions live on.
        """
        require_str(user_id, "user_id")
        hashed = None if password is None else self.hasher.hash(password)
        return self._user(self.storage.set_password(user_id, hashed, keep_session))

    def update_user_provider_id(self, user_id: str, provider: str, identifier: str) -> User:
        """Re-key a user to another ``provider:identifier``."""
        require_str(user_id, "user_id")
        provider_id = self.provider_id(provider, identifier)
        return self._user(self.storage.update_user(user_id, {"provider_id": provider_id}))

    def delete_user(self, user_id: str) -> None:
        """Delete a user and every session it has (idempotent)."""
        self.storage.delete_user(require_str(user_id, "user_id"))

    # -- sessions ---------------------------------------------------------------

    def create_session(
        self,
        user_id: str,
        *,
        fresh: bool = False,
        user_agent: str | None = None,
        ip_address: str | None = None,
    ) -> tuple[Session, Tokens]:
        """A new session for a user, with its first token pair."""
        require_str(user_id, "user_id")
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
        }
        with self.storage.write() as conn:
            self.storage.insert_session(conn, values)
            self.storage.issue_tokens(
                conn, values["id"], (digest(access), access_exp), (digest(refresh), refresh_exp)
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
        )
        return session, self._tokens(access, access_exp, refresh, refresh_exp)

    def find(self, access_token: str) -> Found | None:
        """The request path: one indexed query; None for any invalid or expired token."""
        if not is_well_formed(access_token):
            return None
        row = self.storage.validate(digest(access_token))
        now = now_ms()
        if row is None or row[0] <= now or row[1 + _EXPIRES] <= now:  # token, session max age
            return None
        session = self._session(row, 1, row[0], now)
        if now - row[1 + _LAST_USED] >= self.settings.touch_interval:
            session = self._touch(session, now)
        return Found(self._user(row, 1 + _N_SESSION), session)

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

    def validate_refresh_token(self, refresh_token: str) -> str:
        """The user id of a refresh token that would refresh (no rotation, no revocation)."""
        if is_well_formed(refresh_token):
            now = now_ms()
            with self.storage.read() as conn:
                found = self.storage.refresh_state(
                    conn, digest(refresh_token), family_digest(refresh_token), lock=False
                )
            if found is not None and _alive(found[0], now):
                row, rows = found
                step = _judge(refresh_token, rows, row[_LAST_USED], now, self.settings.grace)
                if step in (Step.ROTATE, Step.FOLLOW, Step.RECOVER):
                    return str(row[_USER])
        raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")

    def refresh(self, refresh_token: str) -> Found:
        """Rotate a refresh token: the old one is spent, the old access token dies.

        A spent token presented again within the grace opens the pair its first
        use made (one live chain however many tabs race). After the grace it is
        taken as stolen and the whole session is revoked, unless the pair it was
        spent into was never used: then the answer was lost on its way, and the
        token is spent again into a new pair while that unused pair is retired.
        """
        if not is_well_formed(refresh_token):
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")
        now = now_ms()
        outcome = self.storage.transaction(
            partial(self._spend, token=refresh_token, now=now), immediate=True
        )
        if isinstance(outcome, Reused):
            signals.send(
                signals.refresh_token_reused, session_id=outcome.session_id, user_id=outcome.user_id
            )
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN", "refresh token reused; session revoked")
        found = self._rotated(*outcome, now=now)  # built outside the transaction: short locks
        signals.send(signals.session_refreshed, session=found.session)
        return found

    def _spend(self, conn: Connection, token: str, now: int) -> Pair | Reused:
        """``refresh`` in one transaction that locks the session row first, so nothing else
        rotates or ends the session meanwhile: a new pair, the live pair, or a revocation."""
        storage, s = self.storage, self.settings
        family = family_digest(token)
        found = storage.refresh_state(conn, digest(token), family, lock=True)
        if found is None or not _alive(found[0], now):
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")  # unknown, or its session is over
        row, rows = found
        session_id = str(row[0])
        for _ in range(_MAX_CHAIN):
            old = digest(token)
            step = _judge(token, rows, row[_LAST_USED], now, s.grace)
            if step is not Step.FOLLOW:
                break
            successor = rows[old].successor
            assert successor is not None
            access, token = unseal(token, successor)
            access_exp = storage.access_expiry(conn, digest(access))
            if access_exp is not None and access_exp > now:  # the live pair
                return Pair(row, access, access_exp, token, row[_IDLE])
            # that pair was rotated too (or its access token expired): go on from it
        else:
            step = Step.REUSED  # more rotations behind than a racing tab can be
        if step is Step.EXPIRED:
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")
        if step is Step.REUSED:
            storage.delete_session(conn, session_id)
            return Reused(session_id, str(row[_USER]))
        # ROTATE, or RECOVER: spend the token (again) into a new pair. A recovery retires
        # the unused successor, so whoever presents it later is caught as a reuse.
        access, refresh = new_token(), new_refresh_token(token)
        access_exp = min(now + s.access_ttl, row[_EXPIRES])
        refresh_exp = min(now + s.refresh_ttl, row[_EXPIRES])
        storage.spend_refresh(conn, old, now, seal(token, access, refresh))
        storage.delete_refresh(conn, _unneeded(old, rows, now, s.grace, step))
        if family not in rows:  # a session from before token families
            storage.insert_family(conn, session_id, family, row[_EXPIRES])
        storage.issue_tokens(
            conn, session_id, (digest(access), access_exp), (digest(refresh), refresh_exp)
        )
        return Pair(row, access, access_exp, refresh, refresh_exp)

    def _rotated(
        self,
        row: Sequence[Any],
        access: str,
        access_exp: int,
        refresh: str,
        refresh_exp: int,
        *,
        now: int,
    ) -> Found:
        """The ``Found`` of a refresh: session and user from ``row``, the pair as cookies."""
        session = replace(self._session(row, 0, access_exp, now), idle_expires=from_ms(refresh_exp))
        user = self._user(row, _N_SESSION)
        return Found(user, session, self._tokens(access, access_exp, refresh, refresh_exp))

    def refresh_session(self, refresh_token: str) -> tuple[Session, Tokens]:
        """Rotate a refresh token into a new pair in the same session."""
        found = self.refresh(refresh_token)
        assert found.tokens is not None
        return found.session, found.tokens

    def invalidate_session(self, access_token: str) -> None:
        """End the session of an access token; unknown tokens are ignored (idempotent)."""
        if is_well_formed(access_token):
            self.storage.delete_session_by_access(digest(access_token))

    def invalidate_all_user_sessions(self, user_id: str) -> None:
        """End every session of a user."""
        self.storage.delete_user_sessions(require_str(user_id, "user_id"))

    def invalidate_user_session(self, user_id: str, session_id: str) -> None:
        """End one session of a user (a device); other sessions are untouched."""
        self.storage.delete_user_sessions(
            require_str(user_id, "user_id"), session_id=require_str(session_id, "session_id", 64)
        )

    def delete_expired_user_sessions(self, user_id: str) -> None:
        """Remove a user's expired sessions and token rows."""
        self.storage.delete_expired(now_ms(), require_str(user_id, "user_id"))

    def expired_batches(self, batch_size: int = 1000) -> Iterator[int]:
        """Remove every user's expired rows in short transactions; yield each batch's count.

        Throttle counters whose window has passed go too.
        """
        now = now_ms()
        while removed := self.storage.delete_expired_batch(now, batch_size):
            yield removed
        stale = self.storage.delete_stale_failures(now - self.throttle.identifier.window)
        if stale:
            yield stale

    def delete_expired_sessions(self) -> int:
        """Remove expired sessions and token rows of every user; the rows removed."""
        return sum(self.expired_batches())

    def get_user_sessions(self, user_id: str) -> list[Session]:
        """A user's sessions (signed-in devices), newest first."""
        rows = self.storage.user_sessions(require_str(user_id, "user_id"))
        now = now_ms()
        return [self._session(row, 1, row[0] if row[0] is not None else now, now) for row in rows]


def _alive(row: Sequence[Any], now: int) -> bool:
    """True while a session (its fields first in ``row``) is within both its lifetimes."""
    return bool(row[_EXPIRES] > now and row[_IDLE] > now)


def _judge(
    token: str, rows: Mapping[str, RefreshRow], last_used: int | None, now: int, grace: int
) -> Step:
    """What presenting ``token`` does, given every refresh row of its session.

    A token of the session's family with no row was rotated out long ago: reuse. A spent
    token after the grace is a lost answer only while the pair it was spent into is the
    live one: its sealed successor (kept until the next rotation) opens to the unspent
    refresh token, and the session was not used since (``last_used_at``, written at most
    once per touch interval, is not later than the spending).
    """
    mine = rows.get(digest(token))
    if mine is None:
        return Step.REUSED
    if mine.spent_at is None:
        return Step.ROTATE if mine.expires_at > now else Step.EXPIRED
    if mine.successor is None:  # wiped: not the predecessor of the live pair
        return Step.REUSED
    if now - mine.spent_at <= grace:
        return Step.FOLLOW
    successor = rows.get(digest(unseal(token, mine.successor)[1]))
    unused = successor is not None and successor.spent_at is None
    used_since = last_used is not None and last_used > mine.spent_at
    return Step.RECOVER if unused and not used_since else Step.REUSED


def _unneeded(
    old: str, rows: Mapping[str, RefreshRow], now: int, grace: int, step: Step
) -> list[str]:
    """Refresh rows that spending ``old`` now leaves useless: spent rows past the grace
    (their sealed successors with them), all but the newest ``SPENT_KEPT - 1`` within it
    (``old`` becomes the latest), and on a recovery the unused live successor. The family
    row stays."""
    spent = sorted(
        (
            (r.spent_at, r.digest)
            for r in rows.values()
            if r.digest != old and r.spent_at is not None and r.spent_at != FAMILY_SPENT_AT
        ),
        reverse=True,
    )
    recent = [d for at, d in spent if now - at <= grace][: SPENT_KEPT - 1]
    drop = [d for _, d in spent if d not in recent]
    if step is Step.RECOVER:
        drop += [r.digest for r in rows.values() if r.spent_at is None]
    return drop


def _check_value(column: Any, value: object) -> None:
    """Reject a value its column cannot hold, naming the column."""
    name = column.name
    if value is None:
        if not column.nullable:
            raise ValueError(f"user_data[{name!r}] must not be None")
        return
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise TypeError(f"user_data[{name!r}] must be {expected.__name__}")
    length = getattr(column.type, "length", None)
    if isinstance(value, (str, bytes)) and length is not None and len(value) > length:
        raise ValueError(f"user_data[{name!r}] must be at most {length} characters")
