"""Password reset in real Chromium (Debian's, driven by Playwright): the link from the mail a
real SMTP server received, a new password typed into the page, and the browser signed in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import PASSWORD, AppFactory
from .mailserver import NO_MAIL_LIMITS, MailServer
from .test_browser import Server, chromium, context  # noqa: F401 - fixtures

NEW = "a brand new passphrase"


@pytest.fixture
def serve(make_app: AppFactory, smtp: MailServer) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(**config: Any) -> Server:
        server = Server(make_app(**smtp.config, **NO_MAIL_LIMITS, **config))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_a_forgotten_password_is_reset_from_the_link_in_the_mail_and_signs_in(
    chromium: Any,  # noqa: F811
    serve: Callable[..., Server],
    smtp: MailServer,
) -> None:
    server = serve()
    with server.app.app_context():
        server.app.lucia.create_user(  # type: ignore[attr-defined]
            "email", "ann@example.com", password=PASSWORD, user_data={"username": "ann"}
        )
    laptop = chromium.new_context()  # signed in elsewhere: this session must end
    phone = chromium.new_context()
    try:
        old = laptop.new_page()
        old.goto(server.url + "/auth/sign-in")
        old.fill("input[name=identifier]", "ann@example.com")
        old.fill("input[name=password]", PASSWORD)
        old.click("button[type=submit]")
        old.wait_for_url(server.url + "/")
        assert old.text_content("#who") == "ann"

        tab = phone.new_page()
        tab.goto(server.url + "/auth/sign-in")
        tab.click("text=Forgot your password?")
        tab.fill("input[name=email]", "ann@example.com")
        tab.click("button[type=submit]")
        tab.wait_for_selector("text=a link to reset its password is on its way")

        tab.goto(server.url + smtp.link("ann@example.com"))
        tab.fill("input[name=password]", NEW)
        tab.fill("input[name=confirm]", NEW)
        tab.click("button[type=submit]")
        tab.wait_for_url(server.url + "/auth/done?what=password_reset")
        assert "Your new password is set." in tab.text_content("[role=status]")
        tab.click("text=Continue")
        tab.wait_for_url(server.url + "/")
        assert tab.text_content("#who") == "ann"
        assert tab.evaluate("window.lucia.getUser().then((u) => u && u.user_id)")

        old.reload()
        assert old.text_content("#who") == "anonymous"
    finally:
        laptop.close()
        phone.close()
