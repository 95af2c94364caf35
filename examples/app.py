"""A small flask-lucia app: sign up, sign in, a protected dashboard, devices, sign out, and a
settings page with two-factor sign-in (TOTP) and passkeys (``pip install "flask-lucia[mfa]"``;
without it the pages do not offer them).

Run it with ``flask --app examples/app.py run``; users and sessions go to a SQLite
file in ``examples/instance/``. Mail (the verification link at sign-up, "Forgot your
password?") is printed to the log until a server is set, e.g. ``FLASK_MAIL_SERVER=localhost
FLASK_MAIL_PORT=1025`` in the environment.

Sign in with GitHub or Google too (``pip install "flask-lucia[oauth]"``): put the client id
and secret of an app registered there in ``GITHUB_CLIENT_ID`` and ``GITHUB_CLIENT_SECRET``
(or ``GOOGLE_...``), or any providers as JSON in ``FLASK_LUCIA_OAUTH_PROVIDERS``; the pages
then show a button per provider (docs/oauth.rst: which callback URL to register).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import sqlalchemy as sa
from flask import Flask, render_template

from flask_lucia import Lucia, current_user, login_required, mfa_required

app = Flask(__name__)
app.config["SECRET_KEY"] = "dev-only-secret"
# Where the app lives: links in mails (reset, verification) and the passkey relying party
# come from here, never from a request's Host header. Passkeys need "localhost" (or a real
# domain), not 127.0.0.1. In production: FLASK_LUCIA_BASE_URL=https://app.example.
app.config["LUCIA_BASE_URL"] = "http://localhost:5000"
# Plain http://localhost in development: Secure cookies would never come back.
app.config["LUCIA_COOKIE_SECURE"] = False
# Sign-up may set the username, and the browser (lucia.js, page data) may see it;
# a column not listed here stays server-side and out of the sign-up form.
app.config["LUCIA_SIGN_UP_COLUMNS"] = ["username"]
app.config["LUCIA_PUBLIC_USER_COLUMNS"] = ["username"]
# No mail server on a development machine: print mails (their links too) to the log. Never
# in production, where anyone who reads the log could use the links.
app.config["LUCIA_LOG_EMAILS"] = not os.environ.get("FLASK_MAIL_SERVER")
# The sign-out button comes back to the home page (by default: the sign-in page).
app.config["LUCIA_SIGN_OUT_REDIRECT"] = "/"
# A provider whose client id and secret are in the environment gets a sign-in button.
app.config["LUCIA_OAUTH_PROVIDERS"] = {
    name: {"client_id": os.environ[f"{prefix}_ID"], "client_secret": os.environ[f"{prefix}_SECRET"]}
    for name, prefix in (("github", "GITHUB_CLIENT"), ("google", "GOOGLE_CLIENT"))
    if os.environ.get(f"{prefix}_ID") and os.environ.get(f"{prefix}_SECRET")
}
app.config.from_prefixed_env()  # e.g. FLASK_SECRET_KEY, FLASK_LUCIA_DATABASE_URL, FLASK_MAIL_SERVER


def provider_user_data(provider: str, profile: Any) -> dict[str, Any]:
    """A user who comes through a provider: a username from the account's (made unique),
    and the name it gives."""
    base = profile["username"] or (profile["email"] or "").partition("@")[0] or provider
    return {"username": f"{base[:24]}-{secrets.token_hex(3)}", "name": profile["name"]}


# The username is not nullable: the sign-up form requires it, and so does JSON sign-up.
columns = [
    sa.Column("username", sa.String(32), unique=True, nullable=False),
    sa.Column("name", sa.String(64), nullable=True),
]
lucia = Lucia(app, user_columns=columns, oauth_user_data=provider_user_data)


@app.get("/")
def index() -> str:
    """Home: links to sign in and sign up, or, signed in, to the dashboard."""
    return render_template("index.html")


@app.get("/dashboard")
@login_required
def dashboard() -> str:
    """A page only a signed-in user sees; its devices are one click away."""
    return render_template("dashboard.html")


@app.get("/settings")
@login_required
def settings() -> str:
    """Two-factor sign-in and passkeys: their state, and the built-in pages to change them."""
    return render_template(
        "settings.html",
        two_factor=lucia.two_factor_enabled(current_user.user_id),
        passkeys=lucia.get_user_passkeys(current_user.user_id),
    )


@app.get("/vault")
@mfa_required
def vault() -> str:
    """A page that needs a sign-in with a second factor or a passkey."""
    return render_template("vault.html")
