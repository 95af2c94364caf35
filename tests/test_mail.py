"""mail.py: messages from templates, and the transports in order (send_email, Flask-Mailman,
SMTP with the MAIL_* keys, the log), against a real SMTP server."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Any

import jinja2
import pytest
from flask import Flask

from flask_lucia import Lucia
from flask_lucia.mail import Mailer, MailError

from .conftest import AppFactory, user_columns
from .mailserver import MailServer, free_port, link_in, text_of


def send(app: Flask, to: str = "ann@example.com", **context: Any) -> EmailMessage:
    """Compose the reset mail to ``to`` in ``app`` and send it through the app's transport."""
    with app.test_request_context():
        mailer: Mailer = app.extensions["lucia_email"].mailer
        message = mailer.compose(
            to, "reset_password", link="http://localhost/auth/x", expires_in="1 hour", **context
        )
        mailer.send(message)
    return message


def test_smtp_delivers_a_message_with_a_plain_text_and_an_html_part(
    make_app: AppFactory, smtp: MailServer
) -> None:
    send(make_app(**smtp.config))
    [got] = smtp.messages
    assert got["Subject"] == "Reset your password"
    assert got["To"] == "ann@example.com"
    assert got.get_content_type() == "multipart/alternative"
    html = got.get_body(preferencelist=("html",))
    assert html is not None and 'href="http://localhost/auth/x"' in html.get_content()  # type: ignore[attr-defined]
    assert link_in(got) == "/auth/x"


def test_the_sender_is_mail_default_sender(make_app: AppFactory, smtp: MailServer) -> None:
    send(make_app(**smtp.config))
    assert smtp.messages[0]["From"] == "Example <no-reply@example.com>"


def test_a_name_and_address_pair_is_a_sender_too(make_app: AppFactory, smtp: MailServer) -> None:
    config = {**smtp.config, "MAIL_DEFAULT_SENDER": ("Shop", "shop@example.com")}
    send(make_app(**config))
    assert smtp.messages[0]["From"] == "Shop <shop@example.com>"


def test_without_a_sender_mail_comes_from_no_reply_at_the_server_name(
    make_app: AppFactory, smtp: MailServer
) -> None:
    config = {**smtp.config, "SERVER_NAME": "shop.example:8443"}
    del config["MAIL_DEFAULT_SENDER"]
    app = make_app(**config)
    with app.app_context():
        mailer = app.extensions["lucia_email"].mailer
        mailer.send(mailer.compose("ann@example.com", "password_changed"))
    assert smtp.messages[0]["From"] == "no-reply@shop.example"


def test_send_email_replaces_every_transport(make_app: AppFactory, smtp: MailServer) -> None:
    sent: list[EmailMessage] = []
    app = make_app(Lucia(user_columns=user_columns(), send_email=sent.append), **smtp.config)
    message = send(app)
    assert sent == [message] and smtp.messages == []


def test_send_email_must_be_callable() -> None:
    with pytest.raises(TypeError, match="send_email"):
        Lucia(send_email="smtp://localhost")  # type: ignore[arg-type]


def test_a_failing_send_email_is_a_mail_error_and_logged(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(message: EmailMessage) -> None:
        raise RuntimeError("the provider's API is down")

    app = make_app(Lucia(user_columns=user_columns(), send_email=broken))
    with pytest.raises(MailError), caplog.at_level(logging.ERROR):
        send(app)
    assert "the provider's API is down" in caplog.text and "ann@example.com" in caplog.text


def test_flask_mailman_sends_when_the_app_initialised_it(
    make_app: AppFactory, smtp: MailServer
) -> None:
    mailman = pytest.importorskip("flask_mailman")
    app = make_app(**smtp.config, MAIL_BACKEND="locmem")
    mailman.Mail(app)
    send(app)
    [got] = app.extensions["mailman"].outbox
    assert got.subject == "Reset your password" and got.to == ["ann@example.com"]
    assert "http://localhost/auth/x" in got.body
    assert got.alternatives[0][1] == "text/html"
    assert smtp.messages == []  # Mailman's backend, not ours


def test_without_a_mail_server_the_message_is_logged_with_its_link(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    with caplog.at_level(logging.WARNING):
        send(app)
    [record] = [r for r in caplog.records if "was not sent" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "http://localhost/auth/x" in record.getMessage()
    assert "To: ann@example.com" in record.getMessage()


def test_a_server_that_is_down_is_a_mail_error_and_logged(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=2)
    with pytest.raises(MailError), caplog.at_level(logging.ERROR):
        send(app)
    assert "could not send the email" in caplog.text and "ConnectionRefusedError" in caplog.text


@pytest.mark.parametrize(
    ("stage", "reply"),
    [("refuse_recipient", "451 4.3.0 try again later"), ("refuse_data", "554 5.7.1 rejected")],
)
def test_a_server_that_refuses_is_a_mail_error(
    make_app: AppFactory, smtp: MailServer, stage: str, reply: str
) -> None:
    setattr(smtp, stage, reply)
    with pytest.raises(MailError):
        send(make_app(**smtp.config))
    assert smtp.messages == []


def test_the_app_overrides_a_mail_template(make_app: AppFactory, smtp: MailServer) -> None:
    app = make_app(**smtp.config)
    app.jinja_loader = jinja2.ChoiceLoader(
        [
            jinja2.DictLoader(
                {"lucia/email/reset_password.txt": "Subject: New password for Shop\n\n{{ link }}"}
            ),
            app.jinja_loader,  # type: ignore[list-item]
        ]
    )
    send(app)
    assert smtp.messages[0]["Subject"] == "New password for Shop"
    assert text_of(smtp.messages[0]).strip() == "http://localhost/auth/x"


def test_a_subject_is_one_line_whatever_the_template_puts_in_it(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = make_app(**smtp.config)
    app.jinja_loader = jinja2.ChoiceLoader(
        [
            jinja2.DictLoader({"lucia/email/reset_password.txt": "Subject: {{ who }}\n\nbody"}),
            app.jinja_loader,  # type: ignore[list-item]
        ]
    )
    send(app, who="Ann\r\nBcc: mallory@example.com")
    assert smtp.messages[0]["Subject"] == "Ann"
    assert smtp.messages[0]["Bcc"] is None


def test_a_text_template_without_a_subject_line_is_refused(make_app: AppFactory) -> None:
    app = make_app()
    app.jinja_loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"lucia/email/reset_password.txt": "no subject"}), app.jinja_loader]  # type: ignore[list-item]
    )
    with pytest.raises(ValueError, match="Subject"):
        send(app)


def test_a_message_goes_to_exactly_one_address(make_app: AppFactory, smtp: MailServer) -> None:
    with pytest.raises(ValueError):
        send(make_app(**smtp.config), to="ann@example.com, mallory@example.com")
    assert smtp.received == []
