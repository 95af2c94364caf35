"""Mail: compose a message from templates and hand it to whatever sends the app's mail.

In order: ``Lucia(..., send_email=callable)``; else the app's Flask-Mailman, if it is
initialised; else ``smtplib`` with the ``MAIL_*`` keys of Flask-Mail and Flask-Mailman;
else (no ``MAIL_SERVER``: development) the message is logged with a warning, links and
all. Every message is an ``email.message.EmailMessage`` with a plain-text and an HTML
part, from ``templates/lucia/email/<name>.txt`` and ``.html`` (the app may override
them; the first line of the text template is ``Subject: ...``).
"""

from __future__ import annotations

import functools
import importlib
import smtplib
import ssl
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template

from flask_lucia.i18n import N_

#: What the user is told when a message could not be sent.
NOT_SENT = N_("We could not send the email. Try again.")
#: Seconds an SMTP connection may take per step when ``MAIL_TIMEOUT`` is not set.
SMTP_TIMEOUT = 10.0

SendEmail = Callable[[EmailMessage], object]


class MailError(Exception):
    """A message could not be handed over (server down, refused, or the app's sender
    failed). The cause is logged; the user is told ``NOT_SENT``."""


class Mailer:
    """Composes and sends one app's messages; ``send_email`` replaces the transports."""

    def __init__(self, send_email: SendEmail | None = None) -> None:
        self.send_email = send_email

    def compose(self, to: str, template: str, **context: Any) -> EmailMessage:
        """A message to ``to`` from ``lucia/email/<template>.txt`` and ``.html``."""
        text = render_template(f"lucia/email/{template}.txt", email=to, **context)
        subject, text = _subject(text, template)
        html = render_template(f"lucia/email/{template}.html", email=to, subject=subject, **context)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = sender()
        message["To"] = Address(addr_spec=to)  # exactly one recipient, or ValueError
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over; ``MailError`` (the cause logged) when that fails."""
        app = current_app
        try:
            if self.send_email is not None:
                self.send_email(message)
            elif "mailman" in app.extensions:
                _send_with_mailman(message)
            elif app.config.get("MAIL_SERVER"):
                _send_with_smtp(message, app.config)
            else:
                _log_instead(message)
        except Exception as exc:  # any transport's failure: the user is told, the cause logged
            app.logger.error(
                "could not send the email %r to %s: %s: %s",
                message["Subject"],
                message["To"],
                type(exc).__name__,
                exc,
            )
            raise MailError(str(exc)) from exc


def _log_instead(message: EmailMessage) -> None:
    """No way to send mail: in development (debug, testing, or ``LUCIA_LOG_EMAILS``) the
    mail is printed to the log, links and all; in production its links never reach a log
    (anyone who reads it could use them), and the mail counts as not sent."""
    app = current_app
    logged = app.config.get("LUCIA_LOG_EMAILS")
    if logged is None:
        logged = app.debug or app.testing
    if not logged:
        raise MailError(
            "no MAIL_SERVER is set, no send_email was given to Lucia and Flask-Mailman is not "
            "set up; outside debug and testing mode the email is not logged either (its links "
            "would work for anyone who reads the log). Set MAIL_SERVER, or LUCIA_LOG_EMAILS "
            "= True on a development machine."
        )
    app.logger.warning(
        "No MAIL_SERVER is set, so this email was not sent; it is printed here "
        "instead (set MAIL_SERVER, or pass send_email to Lucia):\n"
        "To: %s\nSubject: %s\n\n%s",
        message["To"],
        message["Subject"],
        plain_text(message),
    )


def sender() -> str:
    """``MAIL_DEFAULT_SENDER`` (an address, or Flask-Mail's ``(name, address)``), else
    ``no-reply@`` the host of ``LUCIA_BASE_URL`` or ``SERVER_NAME`` (or ``localhost``)."""
    config = current_app.config
    configured = config.get("MAIL_DEFAULT_SENDER")
    if isinstance(configured, (tuple, list)) and len(configured) == 2:
        return formataddr((str(configured[0]), str(configured[1])))
    if configured:
        return str(configured)
    base = current_app.extensions["lucia"].settings.base_url
    host = (urlsplit(base).hostname if base else None) or "localhost"
    return f"no-reply@{host}"


def plain_text(message: EmailMessage) -> str:
    """The plain-text part of a message (where its links are)."""
    part = message.get_body(preferencelist=("plain",))
    return "" if part is None else str(part.get_content())


def html_text(message: EmailMessage) -> str:
    """The HTML part of a message."""
    part = message.get_body(preferencelist=("html",))
    return "" if part is None else str(part.get_content())


def _subject(text: str, template: str) -> tuple[str, str]:
    """Split ``Subject: ...`` off the first line of a rendered text template."""
    first, _, rest = text.lstrip("\n").partition("\n")
    if not first.lower().startswith("subject:"):
        raise ValueError(f"lucia/email/{template}.txt must start with a 'Subject: ...' line")
    subject = " ".join(first[len("subject:") :].split())  # one line: no header injection
    return subject, rest.lstrip("\n")


def _send_with_smtp(message: EmailMessage, config: Any) -> None:
    """Send over SMTP with the ``MAIL_*`` keys: SSL, or STARTTLS, and a login if given."""
    use_ssl = bool(config.get("MAIL_USE_SSL"))
    host = config["MAIL_SERVER"]
    port = int(config.get("MAIL_PORT") or (465 if use_ssl else 25))
    timeout = float(config.get("MAIL_TIMEOUT") or SMTP_TIMEOUT)
    smtp = (
        smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context())
        if use_ssl
        else smtplib.SMTP(host, port, timeout=timeout)
    )
    with smtp:
        if config.get("MAIL_USE_TLS") and not use_ssl:
            smtp.starttls(context=_tls_context())
        username = config.get("MAIL_USERNAME")
        if username:
            smtp.login(username, config.get("MAIL_PASSWORD") or "")
        smtp.send_message(message)


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The system's trust store and safe defaults, loaded once (loading costs ~40 ms)."""
    return ssl.create_default_context()


def _send_with_mailman(message: EmailMessage) -> None:
    """Send through the app's Flask-Mailman (its backend and settings)."""
    mailman: Any = importlib.import_module("flask_mailman")
    mail = mailman.EmailMultiAlternatives(
        subject=str(message["Subject"]),
        body=plain_text(message),
        from_email=str(message["From"]),
        to=[str(message["To"])],
    )
    mail.attach_alternative(html_text(message), "text/html")
    mail.send()
