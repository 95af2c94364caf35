"""A small flask-lucia app: sign up, sign in, a protected dashboard, sign out.

Run it with ``flask --app examples/app.py run``; users and sessions go to a SQLite
file in ``examples/instance/``. Mail (the verification link at sign-up, "Forgot your
password?") is printed to the log until a server is set, e.g. ``FLASK_MAIL_SERVER=localhost
FLASK_MAIL_PORT=1025`` in the environment.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, render_template

from flask_lucia import Lucia, current_user, login_required

app = Flask(__name__)
app.config["SECRET_KEY"] = "dev-only-secret"
# Plain http://127.0.0.1 in development: Secure cookies would never come back.
app.config["LUCIA_COOKIE_SECURE"] = False
# Sign-up may set the username, and the browser (lucia.js, page data) may see it;
# a column not listed here stays server-side and out of the sign-up form.
app.config["LUCIA_SIGN_UP_COLUMNS"] = ["username"]
app.config["LUCIA_PUBLIC_USER_COLUMNS"] = ["username"]
app.config.from_prefixed_env()  # e.g. FLASK_SECRET_KEY, FLASK_LUCIA_DATABASE_URL, FLASK_MAIL_SERVER
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
