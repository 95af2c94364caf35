"""A tour of every built-in page in one Chromium tab: the page tests (one <h1>, a strict CSP,
axe-core) and docs/screenshots.py walk it. Each step opens a page the way a person gets
there (forms typed and sent, links from mails) and yields its name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pyotp
from flask import Flask

from flask_lucia import Lucia

from .soft_authenticator import SoftAuthenticator

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"
#: A provider to link (never contacted: the tour only shows its pages).
PROVIDERS = {"github": {"client_id": "tour", "client_secret": "tour-secret"}}


class Outbox(list[EmailMessage]):
    """The mails the app sent (``send_email``), newest last."""

    def link(self, path: str) -> str:
        """The link to ``path...`` in the newest mail that has one."""
        for message in reversed(self):
            body = message.get_body(("plain",))
            assert body is not None
            found = re.search(rf"https?://\S+{re.escape(path)}\S+", body.get_content())
            if found:
                return found.group(0)
        raise AssertionError(f"no mail links to {path}")


def tour_lucia(outbox: Outbox) -> Lucia:
    """The tour's ``Lucia``: a ``username`` column, mails into ``outbox``."""
    import sqlalchemy as sa

    return Lucia(
        user_columns=[sa.Column("username", sa.String(32), unique=True, nullable=True)],
        send_email=outbox.append,
    )


TOUR_CONFIG = {
    "LUCIA_OAUTH_PROVIDERS": PROVIDERS,
    "LUCIA_SIGN_UP_COLUMNS": ["username"],
    "LUCIA_COOKIE_SECURE": False,
}


def add_home(app: Flask) -> None:
    """A plain home page ("/") where the pages send people on."""
    app.add_url_rule("/", "home", lambda: "<!doctype html><title>Home</title><p>Home</p>")


def submit(tab: Any, button: str = "button[type=submit]") -> None:
    with tab.expect_navigation():
        tab.click(button)


def tour(tab: Any, url: str, app: Flask, outbox: Outbox) -> Iterator[str]:
    """Open each built-in page in ``tab`` (the app at ``url``) and yield its name."""
    lucia: Lucia = app.lucia  # type: ignore[attr-defined]
    with app.app_context():
        user = lucia.create_user("email", "ann@example.com", password=PASSWORD)
        lucia.add_provider_id(user.user_id, "github", "4242")
    tab.goto(url + "/auth/sign-in")
    yield "sign-in"
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", "not the password")
    submit(tab)
    yield "sign-in-error"
    tab.goto(url + "/auth/sign-up")
    yield "sign-up"
    tab.goto(url + "/auth/reset-password")
    yield "reset-request"
    tab.fill("input[name=email]", "ann@example.com")
    submit(tab)
    yield "reset-sent"
    tab.goto(outbox.link("/auth/reset-password/"))
    yield "reset-password"
    tab.goto(url + "/auth/reset-password/not-a-link-we-sent")
    yield "invalid-link"
    tab.goto(url + "/auth/no-such-page")
    yield "not-found"
    tab.goto(url + "/auth/oauth/github/callback?state=forged&code=x")
    yield "oauth-error"

    tab.goto(url + "/auth/sign-in")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", PASSWORD)
    submit(tab)
    tab.goto(url + "/auth/devices")
    yield "devices"
    tab.goto(url + "/auth/confirm")
    yield "confirm"
    tab.goto(url + "/auth/verify-email")
    yield "verify-email"
    submit(tab)
    tab.goto(outbox.link("/auth/verify-email/"))
    yield "email-verified"
    tab.goto(url + "/auth/change-password")
    yield "change-password"
    tab.goto(url + "/auth/change-email")
    yield "change-email"
    tab.goto(url + "/auth/delete-account")
    yield "delete-account"
    tab.goto(url + "/auth/oauth")
    yield "linked-accounts"
    key = SoftAuthenticator(origin=url)
    same_site = {"Origin": url}
    options = tab.request.post(url + "/auth/passkeys/register/options", data={}, headers=same_site)
    body = {"credential": key.create(options.json()), "name": "Laptop"}
    made = tab.request.post(url + "/auth/passkeys/register/verify", data=body, headers=same_site)
    assert made.status == 201, made.text()
    tab.goto(url + "/auth/passkeys")
    yield "passkeys"
    tab.goto(url + "/auth/two-factor")
    yield "two-factor-setup"
    secret = tab.text_content("#totp-secret")
    tab.fill("input[name=code]", pyotp.TOTP(secret).now())
    submit(tab)
    yield "two-factor-codes"
    tab.goto(url + "/auth/two-factor")
    yield "two-factor-on"
    tab.goto(url + "/auth/two-factor/verify")
    yield "two-factor-verify"
    tab.goto(url + "/auth/change-password")
    tab.fill("input[name=current_password]", PASSWORD)
    tab.fill("input[name=password]", NEW_PASSWORD)
    tab.fill("input[name=confirm]", NEW_PASSWORD)
    submit(tab)
    yield "password-changed"
    tab.goto(url + "/auth/change-email")
    tab.fill("input[name=email]", "ann.new@example.com")
    submit(tab)
    yield "change-email-sent"
    tab.goto(outbox.link("/auth/change-email/"))
    yield "email-changed"


#: Every page the tour shows, in order.
PAGES = (
    "sign-in",
    "sign-in-error",
    "sign-up",
    "reset-request",
    "reset-sent",
    "reset-password",
    "invalid-link",
    "not-found",
    "oauth-error",
    "devices",
    "confirm",
    "verify-email",
    "email-verified",
    "change-password",
    "change-email",
    "delete-account",
    "linked-accounts",
    "passkeys",
    "two-factor-setup",
    "two-factor-codes",
    "two-factor-on",
    "two-factor-verify",
    "password-changed",
    "change-email-sent",
    "email-changed",
)
