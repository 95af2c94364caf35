"""The second factor of DESIGN §15: TOTP with recovery codes.

``SecondFactor`` is one app's API over ``mfa.store`` and ``mfa.totp``; it reads no request
(the views in ``mfa.views`` pass in what they took from it). One lives in
``app.extensions["lucia_mfa"]``. Pending sign-ins, which a code completes, are the core's
(``core.pending``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask_lucia import signals
from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.core.pending import Pending
from flask_lucia.core.refusals import RequestError
from flask_lucia.core.secret_box import SecretBox, SecretUnreadable
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import N_
from flask_lucia.mfa import totp
from flask_lucia.mfa.store import MfaStorage

logger = logging.getLogger(__name__)

#: What a user is told when the stored secret cannot be decrypted (the log says why).
UNREADABLE = N_(
    "Codes from your authenticator app cannot be checked right now. "
    "Use a recovery code, or contact the site's support."
)


class SecondFactor:
    """TOTP and recovery codes of one app."""

    def __init__(self, auth: Auth, pending: Pending) -> None:
        self.auth = auth
        self.pending = pending
        self.settings = settings = pending.settings
        self.store = MfaStorage(auth.storage)
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
        """The account an authenticator app lists (``Pending.account_name``)."""
        return self.pending.account_name(user_id)

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
        self.auth.forget_trusted_browsers(user_id)  # the factors changed (DESIGN §19)
        signals.send(signals.two_factor_enabled, user=user)
        return codes

    def disable_totp(self, user: Any) -> bool:
        """Turn TOTP off (secret and recovery codes deleted); False when it was off."""
        if not self.store.disable_totp(self._id(user)):
            return False
        self.auth.forget_trusted_browsers(self._id(user))  # the factors changed
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
            if row is not None:  # the owner sees it: whoever typed it got past the first step
                self.auth.note_event("second_factor_failed", user_id)
            raise LuciaError("AUTH_INVALID_CODE")
        throttle.succeeded(reserved)
        return kind

    def verify_method(self, user_id: Any, code: str) -> str:
        """``verify_code`` answering the method's name as a session records it (DESIGN §19):
        ``"otp"`` or ``"recovery"``."""
        return "otp" if self.verify_code(user_id, code) == "totp" else "recovery"

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

    # -- support staff ----------------------------------------------------------------------

    def reset(self, user: Any) -> tuple[bool, int]:
        """Remove every second factor of a user (TOTP, recovery codes, passkeys), for a user
        who lost them: whether TOTP was on, and how many passkeys went."""
        was_on = self.disable_totp(user)  # then the factors other features registered
        return was_on, sum(remove(user) for remove in self.auth.second_factor_removers)


def _already_on() -> LuciaError:
    return RequestError("Two-factor authentication is on already; turn it off first.", 409)
