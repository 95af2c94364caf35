"""Second factors (DESIGN §15): TOTP with recovery codes, pending sign-ins, and passkeys
(``passkey_core``).

``SecondFactor`` is one app's API over ``mfa_storage`` and ``totp``; it reads no request
(the views in ``two_factor`` pass in what they took from it). One lives in
``app.extensions["lucia_mfa"]``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_lucia import signals
from flask_lucia.config import HOST_PREFIX, Settings, to_ms
from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.core.secret_box import SecretBox, SecretUnreadable, secret_keys
from flask_lucia.core.tokens import digest, is_well_formed, new_token
from flask_lucia.errors import LuciaError
from flask_lucia.mfa import totp
from flask_lucia.mfa.store import MfaStorage
from flask_lucia.passkeys.core import Passkeys, RequestError

logger = logging.getLogger(__name__)

#: The longest a pending sign-in may last (DESIGN §15: at most 5 minutes).
MAX_PENDING_TTL = 5 * 60 * 1000
#: What a user is told when the stored secret cannot be decrypted (the log says why).
UNREADABLE = (
    "Codes from your authenticator app cannot be checked right now. "
    "Use a recovery code, or contact the site's support."
)


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
            secret_keys=secret_keys(config),
        )


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


class SecondFactor:
    """TOTP, recovery codes and pending sign-ins of one app."""

    def __init__(self, auth: Auth, settings: MfaSettings) -> None:
        self.auth = auth
        self.settings = settings
        self.store = MfaStorage(auth.storage)
        self.passkeys = Passkeys(auth)
        keys = settings.secret_keys
        #: Encrypts and decrypts the TOTP secrets; None without a key.
        self.box = SecretBox(keys) if keys else None

    def _id(self, user: Any) -> Any:
        return self.auth.users.id_of(user)

    # -- TOTP -------------------------------------------------------------------------

    def enabled(self, user_id: Any) -> bool:
        """Whether the user has a second factor (TOTP), so a password alone is not enough."""
        return self.store.totp_row(user_id) is not None

    def account_name(self, user_id: Any) -> str:
        """The account an authenticator app lists: the identifier of the user's first key."""
        keys = self.auth.get_user_provider_ids(user_id)
        return keys[0].partition(":")[2] if keys else str(user_id)

    def require_key(self) -> SecretBox:
        """The box TOTP secrets are encrypted with; a 503 that says TOTP cannot be set up
        (and a log line that says why) when the app has no key."""
        if self.box is None:
            logger.error(
                "TOTP cannot be set up: set SECRET_KEY or LUCIA_SECRET_KEYS to encrypt secrets"
            )
            raise RequestError("Two-factor authentication is not available on this site.", 503)
        return self.box

    def new_totp(self, account: str, issuer: str) -> tuple[str, str]:
        """A new secret (nothing stored until a code confirms it) and its otpauth URI."""
        self.require_key()
        secret = totp.new_secret()
        return secret, totp.provisioning_uri(secret, account, issuer)

    def enable_totp(self, user: Any, secret: object, code: object) -> list[str]:
        """Turn TOTP on with a secret confirmed by a first ``code``; the ten recovery
        codes, shown this once (only their digests are kept).

        ``ValueError`` for a malformed secret, ``AUTH_INVALID_CODE`` for a wrong code, and
        ``RequestError`` (409) when TOTP is on already.
        """
        user_id = self._id(user)
        box = self.require_key()
        secret = totp.check_secret(secret)
        if not isinstance(code, str) or len(code) > totp.MAX_CODE_INPUT:
            raise LuciaError("AUTH_INVALID_CODE")
        now = now_ms()
        step = totp.matching_step(secret, totp.normalize_code(code), now)
        if step is None:
            raise LuciaError("AUTH_INVALID_CODE")
        codes = totp.new_recovery_codes()
        digests = [d for d in map(totp.recovery_digest, codes) if d is not None]
        if not self.store.enable_totp(user_id, box.seal(user_id, secret), step, now, digests):
            raise _already_on()
        signals.send(signals.two_factor_enabled, user=user)
        return codes

    def disable_totp(self, user: Any) -> bool:
        """Turn TOTP off (secret and recovery codes deleted); False when it was off."""
        if not self.store.disable_totp(self._id(user)):
            return False
        signals.send(signals.two_factor_disabled, user=user)
        return True

    def new_recovery_codes(self, user: Any) -> list[str]:
        """Ten new recovery codes in place of the old ones; ``RequestError`` (409) when
        TOTP is off."""
        codes = totp.new_recovery_codes()
        digests = [d for d in map(totp.recovery_digest, codes) if d is not None]
        if not self.store.replace_recovery_codes(self._id(user), digests):
            raise RequestError("Two-factor authentication is off.", 409)
        return codes

    def recovery_codes_left(self, user_id: Any) -> int:
        """How many unused recovery codes the user has."""
        return self.store.recovery_codes_left(user_id)

    def verify_code(self, user_id: Any, code: str) -> str:
        """Check a TOTP code (once per time step, one step of drift) or use up a recovery
        code: ``"totp"`` or ``"recovery"``. Throttled per account as passwords are: the
        attempt is counted first and given back on success. ``AUTH_INVALID_CODE`` otherwise.
        """
        throttle = self.auth.throttle
        now = now_ms()
        reserved = throttle.reserve([f"totp:{user_id}"], now)
        kind = None
        row = self.store.totp_row(user_id)
        if row is not None and len(code) <= totp.MAX_CODE_INPUT:
            normalized = totp.normalize_code(code)
            if totp.is_totp_code(normalized):
                secret, stale = self._open(user_id, row[0])
                step = totp.matching_step(secret, normalized, now)
                if step is not None and self.store.spend_step(user_id, step):
                    kind = "totp"
                    if stale:  # sealed under an older key: seal it with the newest
                        assert self.box is not None
                        self.store.reseal_totp(user_id, row[0], self.box.seal(user_id, secret))
            else:
                found = totp.recovery_digest(normalized)
                if found is not None and self.store.spend_recovery_code(user_id, found):
                    kind = "recovery"
        if kind is None:
            raise LuciaError("AUTH_INVALID_CODE")
        throttle.succeeded(reserved)
        return kind

    def _open(self, user_id: Any, stored: str) -> tuple[str, bool]:
        """A user's TOTP secret, and whether an older key sealed it. A secret that does
        not decrypt (no key, a key that was removed, a row copied from another user) is
        logged and answers ``AUTH_INVALID_CODE`` saying to use a recovery code."""
        try:
            if self.box is None:
                raise SecretUnreadable("there is no key: set SECRET_KEY or LUCIA_SECRET_KEYS")
            return self.box.open(user_id, stored)
        except SecretUnreadable as exc:
            logger.error("the TOTP secret of user %s cannot be decrypted: %s", user_id, exc)
            raise LuciaError("AUTH_INVALID_CODE", UNREADABLE) from None

    def mark_session(self, session_id: str) -> None:
        """Make a signed-in session count as MFA (and fresh): a code was just proved in it."""
        self.store.mark_session_mfa(session_id, now_ms() + self.auth.settings.fresh_for)

    # -- pending sign-ins -----------------------------------------------------------------

    def begin_pending(self, user_id: Any, client: str) -> tuple[str, int]:
        """A pending sign-in for a user whose password was right: its raw token (for the
        cookie; only a digest is stored) and its lifetime in seconds."""
        token, now = new_token(), now_ms()
        self.store.add_pending(digest(token), user_id, client, now + self.settings.pending_ttl, now)
        return token, self.settings.pending_ttl // 1000

    def pending_user(self, token: str | None, client: str) -> Any:
        """The user id of a live pending sign-in made in this browser, or None."""
        if not is_well_formed(token):
            return None
        assert token is not None
        row = self.store.find_pending(digest(token), now_ms())
        if row is None or not hmac.compare_digest(str(row[1]), client):
            return None
        return row[0]

    def complete_pending(self, token: str) -> bool:
        """End a pending sign-in that is becoming a session; False if it expired or another
        request completed it first."""
        return is_well_formed(token) and self.store.take_pending(digest(token), now_ms())

    def cancel_pending(self, token: str | None) -> None:
        """Forget a pending sign-in (a passkey signed the browser in instead)."""
        if is_well_formed(token):
            assert token is not None
            self.store.drop_pending(digest(token))

    # -- support staff ----------------------------------------------------------------------

    def reset(self, user: Any) -> tuple[bool, int]:
        """Remove every second factor of a user (TOTP, recovery codes, passkeys), for a user
        who lost them: whether TOTP was on, and how many passkeys went."""
        return self.disable_totp(user), self.passkeys.delete_all(user)


def _already_on() -> LuciaError:
    return RequestError("Two-factor authentication is on already; turn it off first.", 409)
