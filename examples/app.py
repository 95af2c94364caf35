"""A small flask-lucia app: sign up, sign in, a protected dashboard, sign out, and a
settings page with two-factor sign-in (TOTP) and passkeys (``pip install "flask-lucia[mfa]"``).

Run it with ``flask --app examples/app.py run``; users and sessions go to a SQLite
file in ``examples/instance/``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, render_template

from flask_lucia import Lucia, current_user, login_required, mfa_required

app = Flask(__name__)
app.config["SECRET_KEY"] = "dev-only-secret"
# Plain http://127.0.0.1 in development: Secure cookies would never come back.
app.config["LUCIA_COOKIE_SECURE"] = False
# Sign-up may set the username, and the browser (lucia.js, page data) may see it;
# a column not listed here stays server-side and out of the sign-up form.
app.config["LUCIA_SIGN_UP_COLUMNS"] = ["username"]
app.config["LUCIA_PUBLIC_USER_COLUMNS"] = ["username"]
app.config.from_prefixed_env()  # e.g. FLASK_SECRET_KEY, FLASK_LUCIA_DATABASE_URL
lucia = Lucia(app, user_columns=[sa.Column("username", sa.String(32), unique=True)])


@app.get("/")
def index() -> str:
    """Home: sign-in and sign-up forms, or a greeting."""
    return render_template("index.html")


@app.get("/dashboard")
@login_required
def dashboard() -> str:
    """A page only a signed-in user sees."""
    sessions = lucia.get_user_sessions(current_user.user_id)
    return render_template("dashboard.html", sessions=sessions)


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
