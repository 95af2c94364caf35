"""Flask's tutorial app flaskr (raw ``sqlite3``, no ORM) on flask-lucia: the users table
is declared once as a SQLAlchemy ``Table`` for flask-lucia, the built-in pages sign in
and up by username, and ``init-db`` leaves no row of an old user behind."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask, current_app, g, redirect, request, url_for

from flask_lucia import Lucia, current_user, login_required

# The app's user table as flask-lucia sees it (schema.sql creates it).
users = sa.Table(
    "user",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), unique=True, nullable=False),
)
lucia = Lucia(user_model=users, identifier_columns={"username": "username"})


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    database = os.path.join(app.instance_path, "flaskr.sqlite")
    app.config.from_mapping(
        SECRET_KEY="dev",
        DATABASE=database,
        LUCIA_DATABASE_URL=f"sqlite:///{database}",
        LUCIA_PASSWORD_PROVIDER="username",
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    lucia.init_app(app)
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)

    @app.get("/")
    def index() -> str:
        posts = get_db().execute(
            "SELECT p.title, u.username FROM post p JOIN user u ON p.author_id = u.id"
            " ORDER BY p.created DESC"
        )
        return "\n".join(f"{row['title']} by {row['username']}" for row in posts)

    @app.route("/create", methods=("GET", "POST"))
    @login_required
    def create() -> Any:
        if request.method == "POST":
            db = get_db()
            db.execute(
                "INSERT INTO post (title, body, author_id) VALUES (?, ?, ?)",
                (request.form["title"], request.form["body"], current_user.user_id),
            )
            db.commit()
            return redirect(url_for("index"))
        return "<form method=post><input name=title><textarea name=body></textarea></form>"

    return app


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
    connection: sqlite3.Connection = g.db
    return connection


def close_db(_: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db() -> None:
    """flaskr's init-db: drop and recreate the app's tables; then flask-lucia's, which
    also removes the rows of the users the drop took away (their ids come back)."""
    with current_app.open_resource("schema.sql") as f:
        get_db().executescript(f.read().decode("utf8"))
    lucia.create_tables()


@click.command("init-db")
def init_db_command() -> None:
    """Clear the existing data and create new tables."""
    init_db()
    click.echo("Initialized the database.")
