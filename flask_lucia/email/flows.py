"""The email flows (DESIGN §13): verification, password reset, and changes of password
and address, over ``Auth``, ``EmailStore`` and ``Mailer``.

A link carries a random token of which only the SHA-256 digest is stored; it is single
use, it expires, and a newer link of the same purpose replaces it. A link is kept only
when its mail went out: a mail that fails removes its link and uncounts it, and raises
``MailError``. Nothing here reads Flask's request globals: views pass the client address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.engine import Connection

from flask_lucia import signals
from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.core.store.schema import EMAIL_PROVIDER
from flask_lucia.core.tokens import digest, is_well_formed, new_token
from flask_lucia.email.sending import send_counted
from flask_lucia.email.store import CHANGE_EMAIL, RESET, VERIFY, EmailStore
from flask_lucia.email.text import duration, is_address
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import N_
from flask_lucia.mail import Mailer, MailError
from flask_lucia.types import Session
from flask_lucia.web.links import external_url
from flask_lucia.web.pipeline import pipeline

INVALID_ADDRESS = N_("Enter a valid email address.")
#: The answer to a reset request, for an address with an account or without one.
RESET_SENT = N_("If an account uses this address, a link to reset its password is on its way.")


class Emails:
    """One app's email flows; ``app.extensions["lucia_email"]``."""

    def __init__(self, auth: Auth, mailer: Mailer) -> None:
        self.auth = auth
        self.store = EmailStore(auth.storage)
        self.mailer = mailer

    # -- addresses ----------------------------------------------------------------

    def key(self, email: object) -> str:
        """``email:<address>`` as sign-up and sign-in key it; ``ValueError`` for anything
        that is not one plain address (``a@b.example``: no name, list, quotes, spaces or
        control characters, a dot in the domain, not too long)."""
        if not isinstance(email, str):
            raise TypeError(f"email must be a str, not {type(email).__name__}")
        try:
            key = self.auth.provider_id(EMAIL_PROVIDER, email.strip())
        except ValueError:  # empty or too long
            raise ValueError(INVALID_ADDRESS) from None
        if not is_address(key.partition(":")[2]):
            raise ValueError(INVALID_ADDRESS)
        return key

    def address(self, user_id: Any) -> str | None:
        """The user's email address (its first email key), or None."""
        return self.auth.address(user_id)

    def email_verified(self, user_id: Any) -> datetime | None:
        """When the user's email address was verified; None when not (or it has none)."""
        return self.auth.email_verified(user_id)

    def needs_verification(self, user_id: Any) -> bool:
        """True when the user has an email address that is not verified (a user without
        one has nothing to verify)."""
        return self.auth.needs_verification(user_id)

    # -- verification -------------------------------------------------------------

    def send_verification(self, user_id: Any, *, client_address: str | None = None) -> str | None:
        """Mail a verification link to the user's address; the address, or None when it
        is verified already. ``AUTH_INVALID_REQUEST`` for a user without an address."""
        user_id = self.auth.users.check_id(user_id)
        found = self.store.email_key(user_id)
        if found is None:
            raise LuciaError("AUTH_INVALID_REQUEST", "This account has no email address.")
        if found[1]:
            return None
        address = found[0].partition(":")[2]
        self._mail_link(
            user_id,
            address,
            VERIFY,
            "verify_email",
            "lucia.verify_email_link",
            self.auth.settings.verify_email_ttl,
            client_address,
        )
        return address

    def after_sign_up(self, user_id: Any, *, client_address: str | None = None) -> bool:
        """Mail the first verification link to a new user, unless verification is "off"
        or it has no address; whether a link went out. A failure does not fail the
        sign-up (it is logged; the verification page sends another)."""
        if self.auth.settings.email_verification == "off":
            return False
        if self.store.email_key(self.auth.users.check_id(user_id)) is None:
            return False
        try:
            return self.send_verification(user_id, client_address=client_address) is not None
        except (LuciaError, MailError):
            return False

    def verify(self, token: str) -> tuple[Any, str]:
        """Spend a verification link: its address is verified. ``(user, address)``."""
        now = now_ms()
        with self.store.write() as conn:
            found = self._spend(conn, token, VERIFY, now)
            user_id, address = found
            if not self.store.mark_verified(conn, user_id, f"{EMAIL_PROVIDER}:{address}", now):
                raise LuciaError("AUTH_INVALID_TOKEN")  # the address changed since: no proof
        user = self.auth.get_user(user_id)
        signals.send(signals.email_verified, user=user, email=address)
        return user, address

    # -- password reset -----------------------------------------------------------

    def request_reset(self, email: str, *, client_address: str | None = None) -> None:
        """Answer a reset request for ``email``: a link if an account uses it, else a
        note that none does. Both paths do the same work (one lookup, one mail rendered
        and sent, one transaction that counts it and stores a link row: for no user
        when there is none), so neither the answer nor its time tells them apart."""
        key = self.key(email)
        address = key.partition(":")[2]
        user_id = self.store.owner(key)
        if user_id is not None:
            self.send_reset(user_id, address, client_address=client_address)
            return
        token = new_token()  # never mailed: its row only makes this path cost the same
        ttl = self.auth.settings.reset_ttl
        message = self.mailer.compose(
            address,
            "reset_unknown",
            link=external_url("lucia.reset_password"),
            expires_in=duration(ttl),
        )
        self._send_link(message, token, None, RESET, address, ttl, client_address)

    def send_reset(
        self, user_id: Any, address: str | None = None, *, client_address: str | None = None
    ) -> str:
        """Mail a reset link to the user (to its address, or ``address``); the address.
        A newer link replaces the older ones."""
        user_id = self.auth.users.check_id(user_id)
        if address is None:
            address = self.address(user_id)
            if address is None:
                raise LuciaError("AUTH_INVALID_REQUEST", "This account has no email address.")
        self._mail_link(
            user_id,
            address,
            RESET,
            "reset_password",
            "lucia.reset_password_link",
            self.auth.settings.reset_ttl,
            client_address,
        )
        return address

    def check_reset(self, token: str) -> Any:
        """The user id of a reset link that works now (not spent); ``AUTH_INVALID_TOKEN``."""
        if not is_well_formed(token):
            raise LuciaError("AUTH_INVALID_TOKEN")
        found = self.store.peek(digest(token), RESET, now_ms())
        if found is None:
            raise LuciaError("AUTH_INVALID_TOKEN")
        return found[0]

    def second_factor_required(self, user_id: Any) -> bool:
        """Whether a reset must check the user's second factor (TOTP) before it takes the
        new password (DESIGN §13, §15): a mailbox alone must not undo a second factor."""
        return self.auth.has_second_factor(user_id)

    def reset_password(
        self,
        token: str,
        password: str,
        code: str | None = None,
        *,
        notice: Mapping[str, Any] | None = None,
    ) -> tuple[Any, tuple[str, ...]]:
        """Spend a reset link: the new password, every session ended, the address
        verified, in one transaction. The user and what it proved (``("link",)``, or
        ``("link", "otp")``), for the caller to sign the browser in through the pipeline.

        With a second factor, ``code`` is checked first by the pipeline's code check
        (throttled); without it, ``AUTH_SECOND_FACTOR_REQUIRED``. Either keeps the link."""
        self.auth.hasher.normalize(password, new=True)  # a bad password keeps the link
        user_id = self.check_reset(token)
        amr: tuple[str, ...] = ("link",)
        if self.second_factor_required(user_id):
            check = pipeline().verify_code
            if not code or check is None:
                raise LuciaError(
                    "AUTH_SECOND_FACTOR_REQUIRED",
                    "Enter the code from your authenticator app, or a recovery code.",
                )
            amr = ("link", check(user_id, code))
        hashed = self.auth.hasher.hash(password)
        now = now_ms()
        with self.store.write() as conn:
            user_id, address = self._spend(conn, token, RESET, now)
            self.store.set_password(conn, user_id, hashed, self.auth.settings.password_provider)
            self.store.mark_verified(conn, user_id, f"{EMAIL_PROVIDER}:{address}", now)
            self.auth.storage.record_event(conn, "password_reset", user_id)
        user = self.auth.get_user(user_id)
        signals.send(signals.password_reset, user=user)
        self.notify(address, "password_changed", **(notice or {}))  # where and when
        return user, amr

    # -- changes ------------------------------------------------------------------

    def change_password(
        self,
        session: Session,
        current: str,
        password: str,
        *,
        client_address: str | None = None,
        notice: Mapping[str, Any] | None = None,
    ) -> Any:
        """Check the current password (throttled), set the new one, end every other
        session, and tell the user by email (a failed notice is logged, not undone;
        ``notice``: where and when, for the mail)."""
        self.auth.hasher.normalize(password, new=True)
        self.auth.reauthenticate(session, current, client_address=client_address)
        user = self.auth.update_user_password(
            session.user_id, password, keep_session=session.session_id
        )
        address = self.address(session.user_id)
        if address is not None:
            self.notify(address, "password_changed", **(notice or {}))
        return user

    def request_email_change(
        self, user_id: Any, email: str, *, client_address: str | None = None
    ) -> str:
        """Mail a link to a new address; the switch happens when it is opened. An address
        that another account has gets a note instead and the same answer. The address."""
        user_id = self.auth.users.check_id(user_id)
        key = self.key(email)
        address = key.partition(":")[2]
        current = self.store.email_key(user_id)
        if current is not None and current[0] == key:
            raise ValueError("This is already your email address.")
        if self.store.owner(key) is not None:
            message = self.mailer.compose(address, "email_taken")
            self._send_link(message, None, None, CHANGE_EMAIL, address, 0, client_address)
            return address
        self._mail_link(
            user_id,
            address,
            CHANGE_EMAIL,
            "change_email",
            "lucia.change_email_link",
            self.auth.settings.change_email_ttl,
            client_address,
        )
        return address

    def change_email(
        self, token: str, *, notice: Mapping[str, Any] | None = None
    ) -> tuple[Any, str | None, str]:
        """Spend a change link: the user's email key becomes the new address (verified;
        password and sessions kept) and the old address is told (``notice``: where and
        when, for that mail). ``(user, old, new)``;
        ``AUTH_DUPLICATE_PROVIDER_ID`` if another account took the address meanwhile."""
        now = now_ms()
        try:
            with self.store.write() as conn:
                user_id, address = self._spend(conn, token, CHANGE_EMAIL, now)
                old_key = self.store.move_email(conn, user_id, f"{EMAIL_PROVIDER}:{address}", now)
                self.store.drop(conn, user_id, VERIFY)  # links to the old address
                self.auth.storage.record_event(conn, "email_changed", user_id)
        except sa.exc.IntegrityError:
            raise LuciaError(
                "AUTH_DUPLICATE_PROVIDER_ID", "An account with this email already exists."
            ) from None
        old = None if old_key is None else old_key.partition(":")[2]
        if old is not None:
            self.notify(old, "email_changed", new_email=address, **(notice or {}))
        user = self.auth.get_user(user_id)
        signals.send(signals.email_changed, user=user, old_email=old, new_email=address)
        return user, old, address

    # -- sending ------------------------------------------------------------------

    def notify_owner(
        self, user_id: Any, template: str, context: Callable[[], dict[str, Any]]
    ) -> bool:
        """Mail the user's address (``Auth.owner_notifier``: security notices); False when
        it has no address or the mail failed (logged). ``context`` is called only once
        there is an address to send to."""
        try:
            address = self.address(user_id)
        except LuciaError as error:  # the database failed: the change stands, the notice waits
            current_app.logger.warning("could not look up the address for a notice: %s", error)
            return False
        if address is None:
            return False
        return self.notify(address, template, **context())

    def notify(self, address: str, template: str, **context: Any) -> bool:
        """Tell an address about a change; False (and logged) when the mail failed,
        which does not undo the change."""
        try:
            self.mailer.send(self.mailer.compose(address, template, **context))
        except MailError:
            return False
        return True

    def _mail_link(
        self,
        user_id: Any,
        address: str,
        purpose: str,
        template: str,
        endpoint: str,
        ttl: int,
        client_address: str | None,
    ) -> None:
        """Mail ``address`` a new single-use link to ``endpoint`` for ``purpose``, built
        from ``template``, that works for ``ttl`` ms (counted, stored, sent: ``_send_link``)."""
        token = new_token()
        message = self.mailer.compose(
            address,
            template,
            link=external_url(endpoint, token=token),
            expires_in=duration(ttl),
        )
        self._send_link(message, token, user_id, purpose, address, ttl, client_address)

    def _send_link(
        self,
        message: EmailMessage,
        token: str | None,
        user_id: Any,
        purpose: str,
        address: str,
        ttl: int,
        client_address: str | None,
    ) -> None:
        """Count the mail and store its link (if any) in one transaction, send it, and undo
        both if it could not be sent (``sending.send_counted``)."""
        hashed = None if token is None else digest(token)

        def keep(conn: Connection, now: int) -> None:
            if hashed is not None:
                self.store.issue(conn, hashed, user_id, purpose, address, now, now + ttl)

        def undo(conn: Connection) -> None:
            if hashed is not None:
                self.store.discard(conn, hashed)

        send_counted(self, message, address, client_address, keep, undo, purpose)

    def _spend(self, conn: Connection, token: str, purpose: str, now: int) -> tuple[Any, str]:
        """Spend a link of ``purpose`` inside ``conn``; ``AUTH_INVALID_TOKEN`` if it does
        not work (unknown, spent, expired or replaced by a newer one)."""
        if not is_well_formed(token):
            raise LuciaError("AUTH_INVALID_TOKEN")
        found = self.store.spend(conn, digest(token), purpose, now)
        if found is None:
            raise LuciaError("AUTH_INVALID_TOKEN")
        return found
