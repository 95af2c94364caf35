"""The apps the benchmarks compare, each serving ``GET /protected``: a login-required view
that renders the signed-in user's id, over one shared user table.

- ``lucia``: flask-lucia, access token cookie.
- ``lucia-model``: flask-lucia with ``user_model``: the app's Flask-SQLAlchemy model is the
  users table and ``current_user`` an instance of it.
- ``flask-login``: Flask-Login's documented setup: a Flask-SQLAlchemy model over the same
  user table and ``user_loader`` returning ``db.session.get(User, user_id)``.
- ``flask-login-core``: Flask-Login with a SQLAlchemy Core ``user_loader`` (the same select
  as ``floor``): what Flask-Login costs without the ORM.
- ``floor``: bare Flask plus one indexed Core select per request (user id from a plain
  cookie): the least any database-backed session check can cost.
- ``bare``: bare Flask, no auth, no database.

``seed(url)`` creates the tables and one user and returns the request headers that sign
each app in. Under gunicorn: ``BENCH_KIND=lucia BENCH_DATABASE_URL=... gunicorn
'benchmarks.apps:from_env()'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, g, request

KINDS = ("lucia", "lucia-cached", "lucia-model", "flask-login", "flask-login-core", "floor", "bare")
SECRET_KEY = "benchmark secret key, not for production"
#: Where the benchmark app lives (flask-lucia builds no link from a Host header).
BASE_URL = "http://localhost"
USER_AGENT = "flask-lucia-bench"
PROVIDER, IDENTIFIER = "email", "bench@example.com"
USER_ID = "bench-user"
FLOOR_COOKIE = "uid"


def create_app(kind: str, database_url: str) -> Flask:
    """One of ``KINDS``, on the database at ``database_url`` (tables made by ``seed``)."""
    app = Flask(f"bench_{kind.replace('-', '_')}")
    app.config.update(SECRET_KEY=SECRET_KEY, LUCIA_BASE_URL=BASE_URL)
    builders: dict[str, Callable[[Flask, str], None]] = {
        "lucia": _lucia,
        "lucia-cached": partial(_lucia, cached=True),
        "lucia-model": _lucia_model,
        "flask-login": _flask_login_orm,
        "flask-login-core": _flask_login_core,
        "floor": _floor,
        "bare": _bare,
    }
    builders[kind](app, database_url)
    return app


def from_env() -> Flask:
    """The app gunicorn serves: ``BENCH_KIND`` on ``BENCH_DATABASE_URL``."""
    return create_app(os.environ["BENCH_KIND"], os.environ["BENCH_DATABASE_URL"])


def _render(user: Any) -> str:
    return f"<p>Signed in as {user.id}</p>"


def _lucia(app: Flask, url: str, *, cached: bool = False) -> None:
    """flask-lucia; ``cached``: with ``LUCIA_SESSION_CACHE`` (DESIGN §24)."""
    from flask_lucia import Lucia, current_user, login_required

    app.config.update(LUCIA_DATABASE_URL=url, LUCIA_CREATE_TABLES=False, LUCIA_SESSION_CACHE=cached)
    Lucia(app)

    @app.get("/protected")
    @login_required
    def protected() -> str:
        return _render(current_user)


def _lucia_model(app: Flask, url: str) -> None:
    """flask-lucia on the app's own Flask-SQLAlchemy model (``user_model``) over the same
    users table: ``current_user`` is an instance of it, from the same single query."""
    from flask_sqlalchemy import SQLAlchemy

    from flask_lucia import Lucia, current_user, login_required

    db = SQLAlchemy()

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "lucia_users"
        id = db.Column(sa.String(255), primary_key=True)

    app.config.update(SQLALCHEMY_DATABASE_URI=url, LUCIA_CREATE_TABLES=False)
    db.init_app(app)
    Lucia(app, db=db, user_model=User)

    @app.get("/protected")
    @login_required
    def protected() -> str:
        return _render(current_user)


def _flask_login_orm(app: Flask, url: str) -> None:
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    db = SQLAlchemy()

    class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "lucia_users"
        id = db.Column(sa.String(255), primary_key=True)

    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db.init_app(app)
    _flask_login(app, lambda user_id: db.session.get(User, user_id))


def _flask_login_core(app: Flask, url: str) -> None:
    from flask_login import UserMixin

    engine, select = _user_select(url)

    class User(UserMixin):  # type: ignore[misc]
        def __init__(self, row: Any) -> None:
            self.id = row.id

    def load_user(user_id: str) -> User | None:
        with engine.connect() as conn:
            row = conn.execute(select, {"id": user_id}).first()
        return None if row is None else User(row)

    _flask_login(app, load_user)


def _flask_login(app: Flask, load_user: Callable[[str], Any]) -> None:
    """Flask-Login with ``load_user`` as its ``user_loader``; ``/login`` signs a user in."""
    from flask_login import LoginManager, current_user, login_required, login_user

    LoginManager(app).user_loader(load_user)

    @app.get("/protected")
    @login_required  # type: ignore[untyped-decorator]
    def protected() -> str:
        return _render(current_user)

    @app.post("/login")
    def login() -> str:
        login_user(load_user(request.form["user_id"]) or abort(404))
        return "ok"


def _floor(app: Flask, url: str) -> None:
    engine, select = _user_select(url)

    @app.get("/protected")
    def protected() -> str:
        user_id = request.cookies.get(FLOOR_COOKIE)
        if not user_id:
            abort(401)
        with engine.connect() as conn:
            g.user = conn.execute(select, {"id": user_id}).first()
        if g.user is None:
            abort(401)
        return _render(g.user)


def _bare(app: Flask, url: str) -> None:
    user = SimpleNamespace(id=USER_ID)

    @app.get("/protected")
    def protected() -> str:
        return _render(user)


def _user_select(url: str) -> tuple[sa.Engine, sa.Select[Any]]:
    """An engine on ``url`` and the primary-key select of a user, built once."""
    engine = sa.create_engine(url)
    users = sa.Table(
        "lucia_users",
        sa.MetaData(),
        sa.Column("id", sa.String(255), primary_key=True),
    )
    select = sa.select(users.c.id).where(users.c.id == sa.bindparam("id"))
    return engine, select


def seed(url: str) -> dict[str, dict[str, str]]:
    """Create the tables and the one user; the headers that sign each app in."""
    from flask_lucia import Lucia

    app = Flask("bench_seed")
    # One session serves the whole run: an access token that outlives it, no refreshes.
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        LUCIA_BASE_URL=BASE_URL,
        LUCIA_DATABASE_URL=url,
        LUCIA_ACCESS_TOKEN_TTL=timedelta(hours=2),
    )
    lucia = Lucia(app, generate_user_id=lambda: USER_ID)
    with app.app_context():
        lucia.auth.storage.metadata.create_all(lucia.auth.storage.engine)
        try:
            user = lucia.get_user_by_provider_id(PROVIDER, IDENTIFIER)
        except Exception:
            user = lucia.create_user(PROVIDER, IDENTIFIER, password="benchmark password")
        _, tokens = lucia.create_session(user.user_id)
    base = {"User-Agent": USER_AGENT}
    headers = {
        "lucia": {**base, "Cookie": f"lucia_access_token={tokens.access_token}"},
        "lucia-cached": {**base, "Cookie": f"lucia_access_token={tokens.access_token}"},
        "lucia-model": {**base, "Cookie": f"lucia_access_token={tokens.access_token}"},
        "floor": {**base, "Cookie": f"{FLOOR_COOKIE}={user.user_id}"},
        "bare": base,
    }
    for kind in ("flask-login", "flask-login-core"):
        headers[kind] = {**base, "Cookie": _flask_login_cookie(kind, url, user.user_id)}
    return headers


def drop(url: str) -> None:
    """Remove the benchmark's tables (on a server database; a SQLite file just goes)."""
    from flask_lucia import Lucia

    app = Flask("bench_drop")
    app.config.update(LUCIA_BASE_URL=BASE_URL, LUCIA_DATABASE_URL=url, LUCIA_CREATE_TABLES=False)
    Lucia(app)
    storage = app.extensions["lucia"].storage
    storage.metadata.drop_all(storage.engine)
    storage.dispose()


def _flask_login_cookie(kind: str, url: str, user_id: str) -> str:
    """Sign in through the app's own ``login_user`` (same address and agent as the bench)."""
    client = create_app(kind, url).test_client()
    response = client.post(
        "/login",
        data={"user_id": user_id},
        headers={"User-Agent": USER_AGENT},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.status_code == 200, response.status_code
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    return cookie
