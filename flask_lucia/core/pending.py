"""Pending sign-ins (DESIGN §15): a first factor was right for an account that needs a
second, so there is no session yet, only a short-lived pending sign-in bound to its user
(server-side) and its browser (a cookie and a digest of its user agent).

Part of the sign-in pipeline, shared by every way of finishing one: TOTP and recovery
codes (``mfa``) complete it, a passkey sign-in (``passkeys``) cancels it. Also the
settings those second factors share (cookie names, the relying party, TOTP keys), parsed
together because their cookie names must differ. One ``Pending`` lives in
``app.extensions["lucia_pending"]``; it reads no request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_lucia.config import HOST_PREFIX, Settings, to_ms
from flask_lucia.core import assurance
from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.core.secret_box import secret_keys
from flask_lucia.core.store.pending import PendingStore
from flask_lucia.core.tokens import digest, is_well_formed, new_token

#: The longest a pending sign-in may last (DESIGN §15: at most 5 minutes).
MAX_PENDING_TTL = 5 * 60 * 1000


@dataclass(frozen=True)
class MfaSettings:
    """The DESIGN §15 ``LUCIA_*`` keys, parsed and checked at ``init_app``."""

    pending_cookie: str
    pending_ttl: int
    totp_issuer: str | None
    rp_id: str | None
    rp_name: str | None
    origins: tuple[str, ...] | None
    webauthn_cookie: str
    #: ``LUCIA_MFA_REQUIRED``: whether a user must have a second factor (DESIGN §19).
    mfa_required: Callable[[Any], bool] | bool = False
    #: ``LUCIA_MFA_TRUST_FOR`` in ms; 0: browsers are never trusted.
    trust_for: int = 0
    #: What TOTP secrets are encrypted under (``LUCIA_SECRET_KEYS``, else ``SECRET_KEY``
    #: and its fallbacks), newest first; None: no key, so TOTP cannot be set up.
    secret_keys: tuple[bytes, ...] | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], settings: Settings) -> MfaSettings:
        """Parse the keys of ``config``; ``settings``: the app's other cookie names, which
        these cookies must not take."""
        ttl = to_ms(config["LUCIA_TWO_FACTOR_TTL"], "LUCIA_TWO_FACTOR_TTL")
        if not 0 < ttl <= MAX_PENDING_TTL:
            raise ValueError("LUCIA_TWO_FACTOR_TTL must be more than 0 and at most 5 minutes")
        taken = {settings.access_cookie, settings.refresh_cookie, settings.device_cookie}
        pending = _cookie_name(config, "LUCIA_TWO_FACTOR_COOKIE_NAME", taken)
        challenge = _cookie_name(config, "LUCIA_WEBAUTHN_COOKIE_NAME", {*taken, pending})
        return cls(
            pending_cookie=pending,
            pending_ttl=ttl,
            totp_issuer=_optional_str(config, "LUCIA_TOTP_ISSUER"),
            rp_id=_optional_str(config, "LUCIA_WEBAUTHN_RP_ID"),
            rp_name=_optional_str(config, "LUCIA_WEBAUTHN_RP_NAME"),
            origins=_origins(config["LUCIA_WEBAUTHN_ORIGIN"]),
            webauthn_cookie=challenge,
            mfa_required=_mfa_required(config["LUCIA_MFA_REQUIRED"]),
            trust_for=_trust_for(config["LUCIA_MFA_TRUST_FOR"]),
            secret_keys=secret_keys(config),
        )


def _mfa_required(value: object) -> Callable[[Any], bool] | bool:
    """``LUCIA_MFA_REQUIRED``: True, False, or a function of the user."""
    if isinstance(value, bool) or callable(value):
        return value
    raise ValueError("LUCIA_MFA_REQUIRED must be True, False, or a function of the user")


def _trust_for(value: object) -> int:
    """``LUCIA_MFA_TRUST_FOR`` in ms (None or 0: off), at most a year."""
    if value is None:
        return 0
    ms = to_ms(value, "LUCIA_MFA_TRUST_FOR")
    if not 0 <= ms <= 366 * 24 * 3600 * 1000:
        raise ValueError("LUCIA_MFA_TRUST_FOR must be from 0 to a year")
    return ms


def _optional_str(config: Mapping[str, Any], key: str) -> str | None:
    value = config[key]
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{key} must be a non-empty string, or None")
    return value


def _cookie_name(config: Mapping[str, Any], key: str, taken: set[str | None]) -> str:
    """A cookie name of its own, ``__Host-`` prefixed as the token cookies are."""
    name = config[key]
    if not isinstance(name, str) or not name:
        raise ValueError(f"{key} must be a cookie name")
    if config["LUCIA_COOKIE_HOST_PREFIX"] and not name.lower().startswith("__host-"):
        name = HOST_PREFIX + name
    if name in taken:
        raise ValueError(f"{key} must differ from flask-lucia's other cookie names")
    return name


def _origins(value: object) -> tuple[str, ...] | None:
    """``LUCIA_WEBAUTHN_ORIGIN``: None, an origin, or a list of them (``https://a.example``)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("LUCIA_WEBAUTHN_ORIGIN must be an origin, a list of origins, or None")
    for item in items:
        scheme, _, rest = item.partition("://") if isinstance(item, str) else ("", "", "")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise ValueError(
                f"LUCIA_WEBAUTHN_ORIGIN: {item!r} is not an origin like https://a.example"
            )
    return tuple(items)


def client_digest(user_agent: str | None) -> str:
    """What a pending sign-in remembers of its browser: a digest of its user agent."""
    return hashlib.sha256(b"lucia-client:" + (user_agent or "").encode()).hexdigest()


@dataclass(frozen=True)
class PendingSignIn:
    """A live pending sign-in: its user, the methods proved so far (DESIGN §19), whether
    the session it becomes is remembered, and whether it waits for a second factor to
    be set up (enrolment) rather than given."""

    user_id: Any
    amr: tuple[str, ...]
    remember: bool
    setup: bool


class Pending:
    """The pending sign-ins of one app, and the second-factor settings."""

    def __init__(self, auth: Auth, settings: MfaSettings) -> None:
        self.auth = auth
        self.settings = settings
        self.store = PendingStore(auth.storage)

    def account_name(self, user_id: Any) -> str:
        """The account an authenticator app lists: the identifier of the user's first key."""
        keys = self.auth.get_user_provider_ids(user_id)
        return keys[0].partition(":")[2] if keys else str(user_id)

    def begin(
        self,
        user_id: Any,
        client: str,
        amr: Iterable[str] = ("pwd",),
        *,
        remember: bool = True,
        setup: bool = False,
    ) -> tuple[str, int]:
        """A pending sign-in for a user whose first factor (``amr``) was right: its raw
        token (for the cookie; only a digest is stored) and its lifetime in seconds.
        ``setup``: it waits for a second factor to be set up, not given."""
        token, now = new_token(), now_ms()
        self.store.add(
            digest(token),
            user_id,
            client,
            now + self.settings.pending_ttl,
            now,
            amr=assurance.encode(amr),
            remember=remember,
            setup=setup,
        )
        return token, self.settings.pending_ttl // 1000

    def find(self, token: str | None, client: str) -> PendingSignIn | None:
        """The live pending sign-in of ``token`` made in this browser, or None."""
        if not is_well_formed(token):
            return None
        assert token is not None
        row = self.store.find(digest(token), now_ms())
        if row is None or not hmac.compare_digest(str(row[1]), client):
            return None
        amr = assurance.decode(row[2]) or ("pwd",)  # a row of an older release: a password
        return PendingSignIn(row[0], amr, bool(row[3]), bool(row[4]))

    def user(self, token: str | None, client: str) -> Any:
        """The user id of a live pending sign-in made in this browser, or None."""
        found = self.find(token, client)
        return None if found is None else found.user_id

    def complete(self, token: str) -> bool:
        """End a pending sign-in that is becoming a session; False if it expired or another
        request completed it first."""
        return is_well_formed(token) and self.store.take(digest(token), now_ms())

    def cancel(self, token: str | None) -> None:
        """Forget a pending sign-in (a passkey signed the browser in instead)."""
        if is_well_formed(token):
            assert token is not None
            self.store.drop(digest(token))
