"""Signing in with a code sent by mail (DESIGN §23): ask for a code, type it, signed in.

A code is 8 characters of an alphabet without look-alikes (no 0 or O, no 1 or I), shown as two
groups of four ("K7QM-3XPD") and accepted with or without the separator, in any case.
Only a digest keyed by the app's secret key is stored (a copy of the database cannot try
the 2^40 codes offline), it works for ``LUCIA_EMAIL_CODE_TTL``, at most ``MAX_TRIES``
times, once. An address with no account gets a note instead of a code, by the same work
(one lookup, one mail rendered and sent, one transaction that counts it and stores a
row), so neither the answer nor its time tells the two apart. Wrong codes are throttled
like passwords: per address and per client, counted before they are checked.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy.engine import Connection

from flask_lucia.core.clock import now_ms
from flask_lucia.core.secret_box import secret_keys
from flask_lucia.core.store.schema import EMAIL_PROVIDER
from flask_lucia.core.tokens import generate_random_string
from flask_lucia.email.code_store import CodeStore
from flask_lucia.email.flows import Emails
from flask_lucia.email.sending import send_counted
from flask_lucia.email.text import duration
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import N_
from flask_lucia.web.links import external_url

#: 32 characters, none mistaken for another: 8 of them make 40 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
#: Tries a code allows (wrong ones, and the right one among them); then it is dead.
MAX_TRIES = 5
#: The answer to a request for a code, for an address with an account or without one.
CODE_SENT = N_("If an account uses this address, a code to sign in is on its way.")
#: A code that is wrong, spent, expired, replaced or out of tries.
INVALID_CODE = N_("This code is wrong or no longer works. Check it, or ask for a new one.")
_SEPARATORS = str.maketrans("", "", " -\t")


def new_code() -> str:
    """A fresh code (raw; only its digest is stored)."""
    return generate_random_string(CODE_LENGTH, CODE_ALPHABET)


def shown(code: str) -> str:
    """A code as a person reads it: two groups of four, ``K7QM-3XPD``."""
    return f"{code[:4]}-{code[4:]}"


def normalized(typed: object) -> str | None:
    """A typed code without separators, upper case; None when it cannot be a code."""
    if not isinstance(typed, str) or len(typed) > 4 * CODE_LENGTH:
        return None
    code = typed.translate(_SEPARATORS).upper()
    if len(code) != CODE_LENGTH or not set(code) <= set(CODE_ALPHABET):
        return None
    return code


class SignInCodes:
    """One app's sign-in codes: ``app.extensions["lucia_email_codes"]``."""

    def __init__(self, emails: Emails, config: Any) -> None:
        self.emails = emails
        self.auth = emails.auth
        self.store = CodeStore(emails.auth.storage)
        material = (secret_keys(config) or (b"",))[0]  # newest: a rotation ends live codes
        self._key = hmac.new(material, b"lucia-email-code", hashlib.sha256).digest()

    def digest(self, address: str, code: str) -> str:
        """What is stored for ``code`` sent to ``address``: an HMAC under the app's key."""
        message = f"{address}\n{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, stored: str, address: str, code: str) -> bool:
        """Whether ``code`` is the one whose digest is ``stored`` (in constant time)."""
        return hmac.compare_digest(stored, self.digest(address, code))

    def request(self, email: object, *, client_address: str | None = None) -> None:
        """Mail a code to ``email`` if an account uses it (a newer code replaces an older
        one), else a note that none does. ``ValueError`` for anything but one plain
        address; ``AUTH_TOO_MANY_ATTEMPTS`` over a mail limit; ``MailError``."""
        emails = self.emails
        key = emails.key(email)
        address = key.partition(":")[2]
        user_id = emails.store.owner(key)
        code = new_code()  # for an address without an account: never mailed, never usable
        ttl = self.auth.settings.email_code_ttl
        if user_id is not None:
            message = emails.mailer.compose(
                address, "sign_in_code", code=shown(code), expires_in=duration(ttl)
            )
        else:
            message = emails.mailer.compose(
                address, "sign_in_code_unknown", link=external_url("lucia.sign_in_code")
            )
        hashed = self.digest(address, code)

        def keep(conn: Connection, now: int) -> None:
            self.store.put(conn, address, user_id, hashed, now, now + ttl)

        def undo(conn: Connection) -> None:
            self.store.spend(conn, address, hashed)

        send_counted(emails, message, address, client_address, keep, undo, "code")

    def verify(
        self,
        email: object,
        code: object,
        *,
        client_address: str | None = None,
        device: str | None = None,
    ) -> Any:
        """The user whose address got ``code``; the code is spent and the address counts
        as verified. ``AUTH_INVALID_CODE`` for a wrong, spent, expired, replaced or dead
        code (and for an address with no account); ``AUTH_TOO_MANY_ATTEMPTS`` while the
        address or the client must wait. The try is counted before the code is checked
        and forgiven when it was right."""
        try:
            key = self.emails.key(email)
        except (TypeError, ValueError):
            raise LuciaError("AUTH_INVALID_CODE", INVALID_CODE) from None
        typed = normalized(code)
        if typed is None:  # cannot be a code: nothing to try, nothing to count
            raise LuciaError("AUTH_INVALID_CODE", INVALID_CODE)
        throttle = self.auth.throttle
        trusted = self.auth.device_nonce(key, device)
        now = now_ms()
        reserved = throttle.reserve(throttle.keys(key, client_address, trusted), now)
        user_id = self._spend(key.partition(":")[2], typed, now)
        if user_id is None:
            raise LuciaError("AUTH_INVALID_CODE", INVALID_CODE)
        throttle.succeeded(reserved)
        try:
            return self.auth.get_user(user_id)
        except LuciaError as error:  # the user went meanwhile
            if error.code == "AUTH_INVALID_USER_ID":
                raise LuciaError("AUTH_INVALID_CODE", INVALID_CODE) from None
            raise

    def _spend(self, address: str, code: str, now: int) -> Any:
        """In one transaction: count a try on the address's code, and if ``code`` is it,
        spend it and mark the address verified. The user id, or None."""
        with self.store.storage.write() as conn:
            found = self.store.count_try(conn, address, now, MAX_TRIES)
            if found is None or found[0] is None:
                return None
            user_id, stored = found
            if not self.matches(stored, address, code) or not self.store.spend(
                conn, address, stored
            ):
                return None
            key = f"{EMAIL_PROVIDER}:{address}"
            if not self.emails.store.mark_verified(conn, user_id, key, now):
                return None  # the address moved to another account since: no proof
        return user_id
