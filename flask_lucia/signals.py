"""Blinker signals, sent with the app as sender, once per event."""

from __future__ import annotations

from typing import Any

from blinker import NamedSignal, Namespace
from flask import current_app

_signals = Namespace()

#: A user was created. kwargs: ``user``.
user_created = _signals.signal("user-created")
#: A session was created for a request by ``sign_in``. kwargs: ``user``, ``session``.
user_signed_in = _signals.signal("user-signed-in")
#: A request's session was ended by ``sign_out``. kwargs: ``user``, ``session``.
user_signed_out = _signals.signal("user-signed-out")
#: A refresh token was rotated. kwargs: ``session``.
session_refreshed = _signals.signal("session-refreshed")
#: A refresh token of a session came back after it was used (spent past the grace, its
#: successor in use, or rotated out long ago); the session was revoked.
#: kwargs: ``session_id``, ``user_id``.
refresh_token_reused = _signals.signal("refresh-token-reused")
#: A password hash was replaced by one with current parameters. kwargs: ``user``.
password_rehashed = _signals.signal("password-rehashed")
#: A provider (GitHub, Google, OpenID Connect) signed a user in at the callback, after
#: ``user_signed_in`` (a sign-in that goes on to the second factor sends only
#: ``user_signed_in``, when the code is given).
#: kwargs: ``user``, ``session``, ``provider`` (its name), ``profile``, ``created`` (a new user).
oauth_signed_in = _signals.signal("oauth-signed-in")

#: A user turned TOTP on (confirmed with a first code). kwargs: ``user``.
two_factor_enabled = _signals.signal("two-factor-enabled")
#: A user's TOTP was turned off (by the user, or ``flask lucia reset-two-factor``).
#: kwargs: ``user``.
two_factor_disabled = _signals.signal("two-factor-disabled")
#: A user registered a passkey. kwargs: ``user``, ``passkey`` (a ``Passkey``).
passkey_registered = _signals.signal("passkey-registered")
#: A passkey was deleted. kwargs: ``user``, ``passkey`` (a ``Passkey``).
passkey_removed = _signals.signal("passkey-removed")

#: A user opened the verification link of an email address. kwargs: ``user``, ``email``.
email_verified = _signals.signal("email-verified")
#: A user set a new password through a reset link (every session ended). kwargs: ``user``.
password_reset = _signals.signal("password-reset")
#: A user's email address changed after the link to the new one was opened.
#: kwargs: ``user``, ``old_email`` (None when the user had none), ``new_email``.
email_changed = _signals.signal("email-changed")


def send(signal: NamedSignal, **kwargs: Any) -> None:
    """Send ``signal`` with the current app as sender (Flask's convention)."""
    signal.send(current_app._get_current_object(), **kwargs)  # type: ignore[attr-defined]
