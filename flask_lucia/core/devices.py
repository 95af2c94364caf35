"""Device cookies: proof that a browser once signed in to an account, for the throttle.

OWASP's answer to lock-out: a browser that signed in with the right password gets
a long-lived cookie, signed with the app's ``SECRET_KEY`` and bound to the provider
id, holding a random nonce. Its sign-ins to that account are throttled under the
nonce's own counter, so an attacker who exhausts the identifier's budget from
elsewhere does not lock the owner's known browsers out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from itsdangerous import BadSignature, TimestampSigner

from flask_lucia.core.tokens import generate_random_string

#: Length of a device nonce (a-zA-Z0-9, some 143 bits).
NONCE_LENGTH = 24
#: The longest cookie value read; anything longer is not one of ours.
_MAX_VALUE = 128


class _Signer(TimestampSigner):
    """A timestamp signer on flask-lucia's clock (``now`` in unix seconds), for tests."""

    def __init__(self, keys: Sequence[str | bytes], provider_id: str, now: int) -> None:
        # The salt binds a cookie to one provider id: no other account accepts it.
        salt = b"flask-lucia device\0" + provider_id.encode()
        secrets = [key.encode() if isinstance(key, str) else key for key in keys]
        super().__init__(secrets, salt=salt, digest_method=hashlib.sha256)
        self.now = now

    def get_timestamp(self) -> int:
        return self.now


def issue(keys: Sequence[str | bytes], provider_id: str, now: int) -> str:
    """A new device cookie value for ``provider_id``: a fresh nonce, signed with the last
    key (``keys``: the app's secret key fallbacks, then its secret key)."""
    nonce = generate_random_string(NONCE_LENGTH)
    return _Signer(keys, provider_id, now).sign(nonce).decode()


def nonce(
    keys: Sequence[str | bytes], provider_id: str, value: str, now: int, max_age: int
) -> str | None:
    """The nonce of a device cookie value issued for ``provider_id`` at most ``max_age``
    seconds ago; None for anything else (forged, another account's, expired, garbage)."""
    if not keys or not value or len(value) > _MAX_VALUE:
        return None
    try:
        found = _Signer(keys, provider_id, now).unsign(value, max_age=max_age).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    well_formed = len(found) == NONCE_LENGTH and found.isascii() and found.isalnum()
    return found if well_formed else None
