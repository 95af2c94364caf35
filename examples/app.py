"""A small flask-lucia app: sign up, sign in, a protected dashboard, devices, sign out.

Run it with ``flask --app examples/app.py run``; users and sessions go to a SQLite
file in ``examples/instance/``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, render_template

from flask_lucia import Lucia, login_required

app = Flask(__name__)
app.config["SECRET_KEY"] = "dev-only-secret"
# Plain http://127.0.0.1 in development: Secure cookies would never come back.
app.config["LUCIA_COOKIE_SECURE"] = False
# Sign-up may set the username, and the browser (lucia.js, page data) may see it;
# a column not listed here stays server-side and out of the sign-up form.
app.config["LUCIA_SIGN_UP_COLUMNS"] = ["username"]
app.config["LUCIA_PUBLIC_USER_COLUMNS"] = ["username"]
# The sign-out button comes back to the home page (by default: the sign-in page).
app.config["LUCIA_SIGN_OUT_REDIRECT"] = "/"
app.config.from_prefixed_env()  # e.g. FLASK_SECRET_KEY, FLASK_LUCIA_DATABASE_URL
# Not nullable: the sign-up form requires it, and so does JSON sign-up.
lucia = Lucia(app, user_columns=[sa.Column("username", sa.String(32), unique=True, nullable=False)])


@app.get("/")
def index() -> str:
    """Home: links to sign in and sign up, or, signed in, to the dashboard."""
    return render_template("index.html")


@app.get("/dashboard")
@login_required
def dashboard() -> str:
    """A page only a signed-in user sees; its devices are one click away."""
    return render_template("dashboard.html")
