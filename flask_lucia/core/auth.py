"""The seed API (Lucia's, in Python names) over storage, tokens and passwords.

One ``Auth`` per app lives in ``app.extensions["lucia"]``; the ``Lucia`` object
delegates to the current app's. Every failure is a ``LuciaError``; wrong types
and malformed values are ``TypeError``/``ValueError`` raised before any write.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy.engine import Connection

from flask_lucia import signals
from flask_lucia.config import Settings
from flask_lucia.core import devices, identifiers
from flask_lucia.core.clock import now_ms
from flask_lucia.core.cookies import clearing_cookies, device_cookie, token_cookies
from flask_lucia.core.passwords import PasswordHasher
from flask_lucia.core.store.storage import FAMILY_SPENT_AT, SESSION_FIELDS, RefreshRow, Storage
from flask_lucia.core.throttle import Throttle
from flask_lucia.core.tokens import (
    digest,
    family_digest,
    generate_random_string,
    is_well_formed,
    new_refresh_token,
    new_token,
    seal,
    unseal,
)
from flask_lucia.core.users import Users
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, Tokens, from_ms

_N_SESSION = len(SESSION_FIELDS)
#: Where the session fields start in a row of ``storage.validate`` (after the access
#: token's expiry and first use).
_S = 2
#: Offsets within the session fields: owner, absolute expiry, idle expiry.
_USER, _EXPIRES, _IDLE, _LAST_USED = (
    SESSION_FIELDS.index(name)
    for name in ("user_id", "expires_at", "idle_expires_at", "last_used_at")
)
#: Rotations a session makes within one grace period, at most. Past that, presenting the
#: live refresh token hands back the live pair (or, when its access token is past half its
#: lifetime, the same refresh token with a new access token) instead of rotating it. So a
#: session keeps every token spent within the grace (a race, however many rotations
#: followed it: tabs after a restart) and still has at most SPENT_KEPT + 2 refresh rows:
#: those, the live token and the family row; the latest spent token (a lost answer) is
#: kept past the grace too, and then it is the only spent one within it.
SPENT_KEPT = 3


class Found(NamedTuple):
    """A validated session with its user (and new tokens when it was just rotated)."""

    user: Any  # a ``User``, or an instance of the app's user model
    session: Session
    tokens: Tokens | None = None
    #: True when the user's email is not verified (read only for verification "required").
    unverified: bool = False


class Reused(NamedTuple):
    """A refresh that found a stolen token and revoked its session."""

    session_id: str
    user_id: Any


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
        generate_user_id: Callable[[], Any] | None = None,
        users: Users | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.hasher = hasher
        self.throttle = throttle
        self.users = users or Users(storage.user_pk, storage.user_column_names)
        if generate_user_id is None and not self.users.numbered:
            generate_user_id = _random_user_id
        self._generate_user_id = generate_user_id
        self._columns = {name: storage.users.c[name] for name in storage.user_column_names}
        # Registration points: the core knows no feature; each feature adds itself here
        # at ``init_app`` (docs/architecture.rst).
        #: Whether a user has a second factor, one check per feature that adds one.
        self.second_factor_checks: list[Callable[[Any], bool]] = []
        #: Remove all of a user's factors of one feature (support staff); how many went.
        self.second_factor_removers: list[Callable[[Any], int]] = []
        #: Remove a feature's expired rows (given the time); how many went.
        self.cleanups: list[Callable[[int], int]] = []
        #: Tell a user's owner by mail: ``(user_id, template, context)``, the context a
        #: function called only once there is somewhere to send to; whether it went.
        #: None: nothing is sent (no mail feature).
        self.owner_notifier: Callable[[Any, str, Callable[[], dict[str, Any]]], bool] | None = None

    def has_second_factor(self, user_id: Any) -> bool:
        """Whether the user has a second factor, so one proof alone is not enough."""
        return any(check(user_id) for check in self.second_factor_checks)

    # -- rows to values ---------------------------------------------------------

    def _user(self, row: Sequence[Any], start: int = 0, *, attach: bool = True) -> Any:
        return self.users.build(row, start, attach=attach)

    def _session(self, row: Sequence[Any], start: int, expires: int, now: int) -> Session:
        sid, uid, created, _, idle, fresh_until, last_used, agent, ip, remember, mfa = row[
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
            remember=bool(remember),
            mfa=bool(mfa),
        )

    def _tokens(
        self, access: str, access_exp: int, refresh: str, refresh_exp: int, remember: bool = True
    ) -> Tokens:
        now = now_ms()
        cookies = token_cookies(
            self.settings,
            access,
            max(0, (access_exp - now) // 1000),
            refresh,
            max(0, (refresh_exp - now) // 1000),
            self.cookie_secure(),
            persistent=remember,
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

    # -- device cookies ---------------------------------------------------------

    def _secret_keys(self) -> list[str | bytes]:
        """The app's secret key fallbacks, then its secret key; none: no device cookies."""
        if self.settings.device_cookie is None or not current_app.secret_key:
            return []
        fallbacks = current_app.config.get("SECRET_KEY_FALLBACKS") or []
        return [*fallbacks, current_app.secret_key]

    def device_nonce(self, provider_id: str, cookie: str | None) -> str | None:
        """The nonce of a device cookie this browser earned by signing in as
        ``provider_id``; None for no cookie, a forged, expired or another account's."""
        if cookie is None:
            return None
        max_age = self.settings.device_max_age // 1000
        return devices.nonce(self._secret_keys(), provider_id, cookie, now_ms() // 1000, max_age)

    def device_cookie(self, provider_id: str) -> str | None:
        """``Set-Cookie`` of a new device cookie for ``provider_id``; None when device
        cookies are off or the app has no ``SECRET_KEY``."""
        keys = self._secret_keys()
        if not keys:
            return None
        value = devices.issue(keys, provider_id, now_ms() // 1000)
        return device_cookie(self.settings, value, self.cookie_secure())

    # -- input checks -----------------------------------------------------------

    def provider_id(self, provider: object, identifier: object, *, new: bool = False) -> str:
        """``"provider:identifier"`` with the identifier normalized (``identifiers``): the
        one place sign-up, sign-in, throttling and lookups get it from. ``new``: also
        check that the provider can have it (an email must be an address)."""
        provider = require_str(provider, "provider", 64)
        if ":" in provider:
            raise ValueError("provider must not contain ':'")
        normalized = identifiers.normalize(
            provider, identifier, self.settings.identifier_max_length
        )
        if new:
            identifiers.check_new(provider, normalized)
        return f"{provider}:{normalized}"

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

    # -- email addresses --------------------------------------------------------

    def address(self, user_id: Any) -> str | None:
        """The user's email address (its first email key), or None."""
        found = self.storage.email_key(self.users.check_id(user_id))
        return None if found is None else found[0].partition(":")[2]

    def email_verified(self, user_id: Any) -> datetime | None:
        """When the user's email address was verified; None when not (or it has none)."""
        found = self.storage.email_key(self.users.check_id(user_id))
        return None if found is None or not found[1] else from_ms(found[1])

    def needs_verification(self, user_id: Any) -> bool:
        """True when the user has an email address that is not verified (a user without
        one has nothing to verify)."""
        found = self.storage.email_key(self.users.check_id(user_id))
        return found is not None and not found[1]

    # -- users ------------------------------------------------------------------

    def create_user(
        self,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        user_data: Mapping[str, Any] | None = None,
    ) -> Any:
        """Create a user keyed by ``provider:identifier``, with an optional password."""
        key = self.provider_id(provider, identifier, new=True)
        values = self.check_user_data(user_data, partial=False)
        hashed = None if password is None else self.hasher.hash(password)
        if self._generate_user_id is not None:
            values[self.storage.user_pk.name] = self.users.check_id(
                self._generate_user_id(), "generate_user_id()"
            )
        user_id = self.storage.insert_user(values, key, hashed, now_ms())
        user = self.get_user(user_id)
        signals.send(signals.user_created, user=user)
        return user

    def authenticate_user(
        self,
        provider: str,
        identifier: str,
        password: str,
        *,
        client_address: str | None = None,
        device: str | None = None,
    ) -> Any:
        """The user whose password this is; unknown users cost a full hash.

        Throttled: the attempt is counted as a failure before the hash runs (so parallel
        guesses cannot outrun the budget) and given back only when the password is right;
        a hash that cannot be verified (``AUTH_OUTDATED_PASSWORD``) stays counted. With
        a valid ``device`` cookie for this account, it counts on that device's own
        budget instead of the identifier's and the address's.
        """
        key = self.provider_id(provider, identifier)
        self.hasher.normalize(password)  # a bad or oversized password costs nothing more
        trusted = self.device_nonce(key, device)
        keys = self.throttle.keys(key, client_address, trusted)
        reserved = self.throttle.reserve(keys, now_ms())  # before any hashing
        row = self.storage.user_by_key(key)
        verdict = self.hasher.verify(None if row is None else row[-1], password)
        if row is None or not verdict.ok:
            raise LuciaError("AUTH_INVALID_PROVIDER_ID" if row is None else "AUTH_INVALID_PASSWORD")
        self.throttle.succeeded(reserved)
        user = self._user(tuple(row[:-1]))
        if verdict.needs_rehash:
            self.storage.set_key_password(key, self.hasher.hash(password, new=False))
            signals.send(signals.password_rehashed, user=user)
        return user

    def reauthenticate(
        self,
        session: Session,
        password: str,
        *,
        client_address: str | None = None,
        device: str | None = None,
    ) -> Session:
        """Confirm the password of a session's user and make that session fresh (no new one)."""
        with_password = [key for key, has in self.storage.user_keys(session.user_id) if has]
        preferred = f"{self.settings.password_provider}:"
        with_password.sort(key=lambda key: not key.startswith(preferred))
        if not with_password:
            raise LuciaError("AUTH_INVALID_PASSWORD")
        provider, _, identifier = with_password[0].partition(":")
        try:
            self.authenticate_user(
                provider, identifier, password, client_address=client_address, device=device
            )
        except LuciaError as error:
            if error.code == "AUTH_INVALID_PROVIDER_ID":  # re-keyed meanwhile
                raise LuciaError("AUTH_INVALID_PASSWORD") from None
            raise
        self.storage.set_fresh_until(session.session_id, now_ms() + self.settings.fresh_for)
        return replace(session, fresh=True)

    def get_user(self, user_id: Any) -> Any:
        """The user with this id."""
        row = self.storage.user(self.users.check_id(user_id))
        if row is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return self._user(row)

    def get_user_by_provider_id(self, provider: str, identifier: str) -> Any:
        """The user with the key ``provider:identifier`` (any of its keys)."""
        row = self.storage.user_by_key(self.provider_id(provider, identifier))
        if row is None:
            raise LuciaError("AUTH_INVALID_PROVIDER_ID")
        return self._user(tuple(row[:-1]))

    def get_session_user(self, access_token: str) -> Any:
        """The user of a valid access token."""
        return self.users.attach(self.validate(access_token).user)

    def update_user_data(self, user_id: Any, data: Mapping[str, Any]) -> Any:
        """Change some of the app's user columns."""
        user_id = self.users.check_id(user_id)
        values = self.check_user_data(data, partial=True)
        if not values:
            return self.get_user(user_id)
        return self._user(self.storage.update_user(user_id, values))

    def update_user_password(
        self, user_id: Any, password: str | None, *, keep_session: str | None = None
    ) -> Any:
        """Set (or with None, remove) a user's password and end every session but
        ``keep_session``, in one transaction.

        The password goes to the keys that have one; a user without any gets it on its
        keys of the password provider, else on its first key.
        """
        user_id = self.users.check_id(user_id)
        hashed = None if password is None else self.hasher.hash(password)
        keys = self.storage.user_keys(user_id)
        if not keys:
            raise LuciaError("AUTH_INVALID_USER_ID")
        targets = [key for key, has in keys if has]
        if not targets:
            provider = f"{self.settings.password_provider}:"
            targets = [key for key, _ in keys if key.startswith(provider)] or [keys[0][0]]
        self.storage.set_password(user_id, targets, hashed, keep_session)
        return self.get_user(user_id)

    def update_user_provider_id(self, user_id: Any, provider: str, identifier: str) -> Any:
        """Re-key a user: its first key of ``provider`` (else its first key) becomes
        ``provider:identifier``, keeping its password and sessions."""
        user_id = self.users.check_id(user_id)
        new = self.provider_id(provider, identifier, new=True)
        keys = [key for key, _ in self.storage.user_keys(user_id)]
        if not keys:
            raise LuciaError("AUTH_INVALID_USER_ID")
        same = [key for key in keys if key.startswith(f"{provider}:")]
        old = (same or keys)[0]
        if old != new:
            self.storage.rename_key(user_id, old, new)
        return self.get_user(user_id)

    def add_provider_id(
        self,
        user_id: Any,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        password_hash: str | None = None,
    ) -> Any:
        """Give a user another way in: the key ``provider:identifier``, with a password or
        an existing ``password_hash`` (argon2, Werkzeug, bcrypt, Lucia scrypt: an app's
        users imported as they are, rehashed at their next sign-in)."""
        user_id = self.users.check_id(user_id)
        key = self.provider_id(provider, identifier, new=True)
        if password is not None and password_hash is not None:
            raise ValueError("give password or password_hash, not both")
        if password_hash is not None and not self.hasher.recognizes(password_hash):
            raise ValueError("password_hash is not a hash flask-lucia can verify")
        hashed = password_hash if password is None else self.hasher.hash(password)
        self.storage.add_key(user_id, key, hashed, now_ms())
        return self.get_user(user_id)

    def remove_provider_id(self, user_id: Any, provider: str, identifier: str) -> Any:
        """Take one key from a user; never its last (``AUTH_LAST_PROVIDER_ID``)."""
        user_id = self.users.check_id(user_id)
        self.storage.remove_key(user_id, self.provider_id(provider, identifier))
        return self.get_user(user_id)

    def get_user_provider_ids(self, user_id: Any) -> list[str]:
        """A user's keys as ``"provider:identifier"`` strings, first first."""
        user_id = self.users.check_id(user_id)
        keys = [key for key, _ in self.storage.user_keys(user_id)]
        if not keys and self.storage.user(user_id) is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return keys

    def delete_user(self, user_id: Any) -> None:
        """Delete a user with its keys and sessions (idempotent); ``AUTH_USER_REFERENCED``
        while the app's rows still point at it."""
        self.storage.delete_user(self.users.check_id(user_id))

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
    ) -> tuple[Session, Tokens]:
        """A new session for a user, with its first token pair; with ``remember`` False its
        cookies (these and every rotation's) are browser-session cookies; ``mfa``: signed in
        with a second factor or a passkey."""
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
            "mfa": bool(mfa),
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
            mfa=values["mfa"],
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
        row = self.storage.validate(token_digest)
        now = now_ms()
        # access expiry, first use, then the session fields (from _S) and the user's
        if row is None or row[0] <= now or row[_S + _EXPIRES] <= now:  # token, session max age
            return None
        session = self._session(row, _S, row[0], now)
        if row[1] is None:
            session = self._first_use(session, token_digest, now)
        elif now - row[_S + _LAST_USED] >= self.settings.touch_interval:
            session = self._touch(session, now)
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

    def validate_refresh_token(self, refresh_token: str) -> Any:
        """The user id of a refresh token that would refresh (no rotation, no revocation)."""
        if is_well_formed(refresh_token):
            now = now_ms()
            with self.storage.read() as conn:
                found = self.storage.refresh_state(
                    conn, digest(refresh_token), family_digest(refresh_token), lock=False
                )
                if found is not None and _alive(found[0], now):
                    row, rows = found
                    used = partial(self._pair_used, conn)
                    step = _judge(
                        refresh_token, rows, row[_LAST_USED], now, self.settings.grace, used
                    )
                    if step in (Step.ROTATE, Step.FOLLOW, Step.RECOVER):
                        return row[_USER]
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
        used = partial(self._pair_used, conn)
        for _ in range(len(rows) + 1):  # each spent row opens the next pair, once
            old = digest(token)
            step = _judge(token, rows, row[_LAST_USED], now, s.grace, used)
            if step is not Step.FOLLOW:
                break
            successor = rows[old].successor
            assert successor is not None
            access, token = unseal(token, successor)
            live = storage.access_token(conn, digest(access))
            if live is not None and live[0] > now:  # the live pair
                return Pair(row, access, live[0], token, row[_IDLE])
            # that pair was rotated too (or its access token expired): go on from it
        else:
            step = Step.REUSED  # a loop of seals: never made by a rotation
        if step is Step.EXPIRED:
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")
        if step is Step.REUSED:
            storage.delete_session(conn, session_id)
            return Reused(session_id, row[_USER])
        if step is Step.ROTATE and _spent_within(rows, now, s.grace) >= SPENT_KEPT:
            return self._hand_back(conn, row, token, rows[old], now)
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
            conn,
            session_id,
            (digest(access), access_exp),
            (digest(refresh), refresh_exp),
            own=seal(refresh, access, refresh),
        )
        return Pair(row, access, access_exp, refresh, refresh_exp)

    def _hand_back(
        self, conn: Connection, row: Sequence[Any], token: str, mine: RefreshRow, now: int
    ) -> Pair:
        """The live pair for its own refresh token ``token`` when the session rotated
        SPENT_KEPT times within the grace already: rotating it again would leave a token
        spent within the grace that no row leads from. Its access token, opened from the
        token's own seal, while at least half its lifetime is left; otherwise (or for a
        token issued before own seals) a new access token beside the same refresh token."""
        storage, s = self.storage, self.settings
        if mine.successor is not None:
            access, _ = unseal(token, mine.successor)
            live = storage.access_token(conn, digest(access))
            if live is not None and (
                live[0] - now >= s.access_ttl // 2 or live[0] >= row[_EXPIRES] > now
            ):
                return Pair(row, access, live[0], token, mine.expires_at)
        access = new_token()
        access_exp = min(now + s.access_ttl, row[_EXPIRES])
        storage.reissue_access(
            conn, str(row[0]), (digest(access), access_exp), mine.digest, seal(token, access, token)
        )
        return Pair(row, access, access_exp, token, mine.expires_at)

    def _pair_used(self, conn: Connection, access_token: str) -> bool:
        """Whether the access token of a pair was ever used (validated)."""
        found = self.storage.access_token(conn, digest(access_token))
        return found is not None and found[1] is not None

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
        user = self._user(row, _N_SESSION, attach=False)
        tokens = self._tokens(access, access_exp, refresh, refresh_exp, session.remember)
        return Found(user, session, tokens)

    def refresh_session(self, refresh_token: str) -> tuple[Session, Tokens]:
        """Rotate a refresh token into a new pair in the same session."""
        found = self.refresh(refresh_token)
        assert found.tokens is not None
        return found.session, found.tokens

    def invalidate_session(self, access_token: str) -> None:
        """End the session of an access token; unknown tokens are ignored (idempotent)."""
        if is_well_formed(access_token):
            self.storage.delete_session_by_access(digest(access_token))

    def invalidate_all_user_sessions(self, user_id: Any) -> None:
        """End every session of a user."""
        self.storage.delete_user_sessions(self.users.check_id(user_id))

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


def _random_user_id() -> str:
    """The default user id: 15 random letters and digits (about 89 bits)."""
    return generate_random_string(15)


def _alive(row: Sequence[Any], now: int) -> bool:
    """True while a session (its fields first in ``row``) is within both its lifetimes."""
    return bool(row[_EXPIRES] > now and row[_IDLE] > now)


def _judge(
    token: str,
    rows: Mapping[str, RefreshRow],
    last_used: int | None,
    now: int,
    grace: int,
    used: Callable[[str], bool],
) -> Step:
    """What presenting ``token`` does, given every refresh row of its session.

    A token of the session's family with no row was rotated out long ago: reuse. A spent
    token after the grace is a lost answer only while the pair it was spent into is the
    live one (its sealed successor opens to the unspent refresh token) and that pair was
    never used: ``used`` says whether its access token was ever validated (its first use
    is always recorded), and the session's ``last_used_at`` (which that first use writes
    too) is not later than the spending, for a pair whose access token was replaced.
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
    access, refresh = unseal(token, mine.successor)
    successor = rows.get(digest(refresh))
    if successor is None or successor.spent_at is not None:
        return Step.REUSED  # the pair it was spent into is not the live one
    if last_used is not None and last_used > mine.spent_at:
        return Step.REUSED
    return Step.REUSED if used(access) else Step.RECOVER


def _spent_within(rows: Mapping[str, RefreshRow], now: int, grace: int) -> int:
    """How many of a session's tokens were spent within the grace (its recent rotations)."""
    return sum(
        1
        for r in rows.values()
        if r.spent_at is not None and r.spent_at != FAMILY_SPENT_AT and now - r.spent_at <= grace
    )


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
