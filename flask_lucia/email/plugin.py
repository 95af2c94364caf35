"""The email feature plugs in (DESIGN §13): its routes, its flows, and what it registers
with the core and the request side at ``init_app``."""

from __future__ import annotations

from flask import Flask

from flask_lucia.core.auth import Auth
from flask_lucia.email import account_views as _account_views  # noqa: F401 - adds routes
from flask_lucia.email import code_views as _code_views  # noqa: F401 - adds routes
from flask_lucia.email import commands as _commands  # noqa: F401 - adds its command
from flask_lucia.email import reset_views as _reset_views  # noqa: F401 - adds routes
from flask_lucia.email import views as _views  # noqa: F401 - adds its routes
from flask_lucia.email.code_flow import SignInCodes
from flask_lucia.email.flows import Emails
from flask_lucia.mail import Mailer, SendEmail
from flask_lucia.web.pipeline import Pipeline


def init_app(app: Flask, auth: Auth, pipeline: Pipeline, send_email: SendEmail | None) -> Emails:
    """The app's ``Emails`` (``app.extensions["lucia_email"]``): it mails security notices
    for every feature, removes expired mailed links, and mails a new account its first
    verification link. Sign-in codes (DESIGN §23) live in
    ``app.extensions["lucia_email_codes"]``; their routes answer 404 while
    ``LUCIA_EMAIL_CODE_SIGN_IN`` is off."""
    emails = Emails(auth, Mailer(send_email))
    app.extensions["lucia_email"] = emails
    codes = SignInCodes(emails, app.config)
    app.extensions["lucia_email_codes"] = codes
    auth.owner_notifier = emails.notify_owner
    auth.cleanups.extend((emails.store.delete_expired, codes.store.delete_expired))
    pipeline.signed_up.append(
        lambda user_id, address: emails.after_sign_up(user_id, client_address=address)
    )
    return emails
