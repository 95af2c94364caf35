"""``AuthBase``: what every part of the seed API stands on: settings, storage, hasher and
throttle, the registration points features use at ``init_app``, rows to values, cookies,
device cookies and input checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from flask import current_app

from flask_lucia.config import Settings
from flask_lucia.core import assurance, devices, identifiers
from flask_lucia.core.clock import now_ms
from flask_lucia.core.cookies import clearing_cookies, device_cookie, token_cookies
from flask_lucia.core.passwords import PasswordHasher
from flask_lucia.core.store.base import SESSION_FIELDS
from flask_lucia.core.store.storage import Storage
from flask_lucia.core.throttle import Throttle
from flask_lucia.core.tokens import (
    generate_random_string,
)
from flask_lucia.core.users import Users
from flask_lucia.types import Session, Tokens, from_ms

logger = logging.getLogger("flask_lucia")

_N_SESSION = len(SESSION_FIELDS)
#: Where the session fields start in a row of ``storage.validate`` (after the access
#: token's expiry and first use).
_S = 2
#: Offsets within the session fields: owner, absolute expiry, idle expiry.
_USER, _EXPIRES, _IDLE, _LAST_USED = (
    SESSION_FIELDS.index(name)
    for name in ("user_id", "expires_at", "idle_expires_at", "last_used_at")
)


class Found(NamedTuple):
    """A validated session with its user (and new tokens when it was just rotated)."""

    user: Any  # a ``User``, or an instance of the app's user model
    session: Session
    tokens: Tokens | None = None
    #: True when the user's email is not verified (read only for verification "required").
    unverified: bool = False


class SessionCache(Protocol):
    """Validated rows of the request query kept in process (the ``cache`` feature)."""

    def mark(self) -> int | None:
        """Taken before a lookup; None while the cache is off (nothing is kept)."""

    def get(self, digest: str, now: int) -> list[Any] | None:
        """The row kept for an access token digest, or None."""

    def keep(
        self, digest: str, row: list[Any], *, user_id: str, session_id: str, mark: int, until: int
    ) -> None:
        """Keep a row (of ``user_id``'s ``session_id``) until ``until`` at most, unless
        something changed since ``mark``."""


def require_str(value: object, name: str, max_length: int = 255) -> str:
    """``value`` as a non-empty str of at most ``max_length``; errors name the argument."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{name} must be at most {max_length} characters")
    return value


class AuthBase:
    """One app's settings, storage, hasher and throttle, and the helpers on them."""

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
        #: Where ``find`` keeps validated rows, so a signed-in request may skip the
        #: database; None: every request runs the query (no cache feature, or it is off).
        self.session_cache: SessionCache | None = None

    def note_event(self, kind: str, user_id: Any) -> None:
        """Record an event that no change carries (a failed sign-in) in its own short
        transaction; a failure to write it is logged, never raised to the request."""
        if not self.storage.event_writers:
            return
        try:
            with self.storage.write() as conn:
                self.storage.record_event(conn, kind, user_id)
        except Exception:  # the request it records goes on whatever happens
            logger.exception("flask-lucia could not record a %s event", kind)

    def has_second_factor(self, user_id: Any) -> bool:
        """Whether the user has a second factor, so one proof alone is not enough."""
        return any(check(user_id) for check in self.second_factor_checks)

    # -- rows to values ---------------------------------------------------------

    def _user(self, row: Sequence[Any], start: int = 0, *, attach: bool = True) -> Any:
        return self.users.build(row, start, attach=attach)

    def _session(self, row: Sequence[Any], start: int, expires: int, now: int) -> Session:
        sid, uid, created, _, idle, fresh_until, last_used, agent, ip, remember, mfa, amr = row[
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
            amr=assurance.decode(amr),
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
        issued = self.new_device(provider_id)
        return None if issued is None else issued[0]

    def new_device(self, provider_id: str) -> tuple[str, str] | None:
        """A new device cookie for ``provider_id``: its ``Set-Cookie`` and its nonce (what
        a trusted browser is bound to); None when device cookies are off or the app has
        no ``SECRET_KEY``."""
        keys = self._secret_keys()
        if not keys:
            return None
        now = now_ms() // 1000
        value = devices.issue(keys, provider_id, now)
        nonce = devices.nonce(keys, provider_id, value, now, self.settings.device_max_age // 1000)
        assert nonce is not None
        return device_cookie(self.settings, value, self.cookie_secure()), nonce

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


def _random_user_id() -> str:
    """The default user id: 15 random letters and digits (about 89 bits)."""
    return generate_random_string(15)


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
