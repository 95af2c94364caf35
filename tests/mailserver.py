"""A real SMTP server for the tests (aiosmtpd on loopback), and the links in what it got."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest

controller = pytest.importorskip("aiosmtpd.controller")

_LINK = re.compile(r"https?://[^\s<>\"]+")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MailServer:
    """aiosmtpd in a thread: keeps every message it accepts, or refuses as told
    (``refuse_recipient`` / ``refuse_data``: an SMTP reply such as ``"451 try later"``)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.refuse_recipient: str | None = None
        self.refuse_data: str | None = None
        self.port = free_port()
        self.controller = controller.Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    @property
    def config(self) -> dict[str, Any]:
        """The ``MAIL_*`` keys of an app that sends here."""
        return {
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": self.port,
            "MAIL_DEFAULT_SENDER": "Example <no-reply@example.com>",
        }

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_recipient:
            return self.refuse_recipient
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data:
            return self.refuse_data
        self.received.append(envelope.content)  # parsed when a test reads it
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted so far, oldest first."""
        parsed = []
        for content in list(self.received):
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def to(self, address: str) -> list[EmailMessage]:
        """The messages sent to ``address``, oldest first."""
        return [m for m in self.messages if address in str(m["To"])]

    def link(self, address: str) -> str:
        """The path (with query) of the only link in the newest message to ``address``."""
        found = self.to(address)
        assert found, f"no mail to {address}"
        return link_in(found[-1])


def text_of(message: EmailMessage) -> str:
    """The plain-text part of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "no plain-text part"
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(message: EmailMessage) -> str:
    """The path of the one link in a message's plain text (its HTML part has the same)."""
    links = set(_LINK.findall(text_of(message)))
    assert len(links) == 1, f"expected one link, found {links}"
    parts = urlsplit(links.pop())
    return parts.path + (f"?{parts.query}" if parts.query else "")


def serve_mail() -> Iterator[MailServer]:
    """Fixture body: a mail server for one test."""
    server = MailServer()
    yield server
    server.stop()


#: Mail limits off, for tests of a flow rather than of its throttle.
NO_MAIL_LIMITS = {
    "LUCIA_MAIL_ADDRESS_PER_MINUTE": None,
    "LUCIA_MAIL_ADDRESS_PER_HOUR": None,
    "LUCIA_MAIL_CLIENT_PER_MINUTE": None,
    "LUCIA_MAIL_CLIENT_PER_HOUR": None,
}


def flows_app(make_app: Any, smtp: MailServer, lucia: Any = None, **config: Any) -> Any:
    """A suite app that mails through ``smtp`` (limits off unless given), with
    ``/private`` (login_required) and ``/verified`` (verified_required)."""
    from flask_lucia import current_user, login_required, verified_required

    app = make_app(lucia, **{**smtp.config, **NO_MAIL_LIMITS, **config})

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user_id": app.extensions["lucia"].users.id_of(current_user._get_current_object())}  # type: ignore[attr-defined]

    @app.get("/verified")
    @verified_required
    def verified() -> dict[str, Any]:
        return {"ok": True}

    return app
