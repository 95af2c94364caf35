"""Fixtures: one app per test, on SQLite or (LUCIA_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia
from flask_lucia.core.store.engine import Precompiled

from .mailserver import MailServer, serve_mail

TEST_DATABASE_URL = os.environ.get("LUCIA_TEST_DATABASE_URL")
ORIGIN = "http://localhost"
PASSWORD = "correct horse battery"


def user_columns() -> list[sa.Column[Any]]:
    """The app's custom user columns used across the suite."""
    return [
        sa.Column("username", sa.String(32), unique=True, nullable=True),
        sa.Column("age", sa.Integer, nullable=True),
    ]


#: What the suite's app lets sign-up set and the browser see (nothing is listed by default).
SUITE_COLUMNS = {
    "LUCIA_SIGN_UP_COLUMNS": ["username", "age"],
    "LUCIA_PUBLIC_USER_COLUMNS": ["username", "age"],
}


AppFactory = Callable[..., Flask]


def unique_prefix(base: str) -> str:
    """A table prefix no other test run shares (the PostgreSQL database outlives runs)."""
    return f"{base}{secrets.token_hex(3)}_"


@pytest.fixture
def make_app(tmp_path: Any) -> Iterator[AppFactory]:
    """Build apps with flask-lucia on the test database; drops their tables afterwards."""
    made: list[Flask] = []

    def factory(lucia: Lucia | None = None, **config: Any) -> Flask:
        app = Flask(__name__, instance_path=str(tmp_path / f"instance{len(made)}"))
        app.config.update(TESTING=True, SECRET_KEY="test-secret")
        if TEST_DATABASE_URL:
            app.config["LUCIA_DATABASE_URL"] = TEST_DATABASE_URL
            app.config["LUCIA_TABLE_PREFIX"] = f"t{secrets.token_hex(4)}_"
        if lucia is None:  # the suite's columns; an app given its own Lucia gets the defaults
            app.config.update(SUITE_COLUMNS)
        app.config.update(config)
        ext = lucia or Lucia(user_columns=user_columns())
        ext.init_app(app)
        app.lucia = ext  # type: ignore[attr-defined]  # the instance, for tests
        made.append(app)
        return app

    yield factory
    for app in made:
        cache = app.extensions.get("lucia_cache")
        if cache is not None:
            cache.stop()
        storage = app.extensions["lucia"].storage
        if storage._bare_engine is not None:
            if TEST_DATABASE_URL:
                storage.metadata.drop_all(storage._bare_engine)
            storage.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """An app with flask-lucia, a ``username`` and ``age`` column, and two views."""
    app = make_app()
    from flask_lucia import current_user, fresh_login_required, login_required

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user_id": current_user.user_id, "username": current_user.username}

    @app.get("/fresh")
    @fresh_login_required
    def fresh() -> dict[str, Any]:
        return {"ok": True}

    return app


@pytest.fixture
def lucia(app: Flask) -> Iterator[Lucia]:
    """The app's ``Lucia`` object, used inside an app context."""
    with app.app_context():
        yield app.lucia  # type: ignore[attr-defined]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client that sends ``Origin`` like a browser on the same site."""
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def sign_up(client: FlaskClient, identifier: str = "ann@example.com", **extra: Any) -> Any:
    """Sign a client up through the JSON endpoint; returns the response JSON."""
    response = client.post(
        "/auth/sign-up", json={"identifier": identifier, "password": PASSWORD, **extra}
    )
    assert response.status_code == 201, response.json
    return response.json


def cookie(client: FlaskClient, name: str) -> str | None:
    """The value of a cookie in the client's jar, or None."""
    found = client.get_cookie(name)
    return None if found is None else found.value


class Clock:
    """A controllable ``time.time`` for expiry tests."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze flask-lucia's clock; ``clock.advance(s)`` moves it."""
    import flask_lucia.core.clock

    fake = Clock()
    monkeypatch.setattr(flask_lucia.core.clock, "time", fake)
    return fake


@pytest.fixture
def queries(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement the app sends from here on: through SQLAlchemy's events, and
    the request path's precompiled select, which goes straight to the DBAPI cursor."""
    with app.app_context():
        engine = app.extensions["lucia"].storage.engine
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    first = Precompiled.first

    def recording_first(self: Precompiled, *args: Any) -> Any:
        seen.append(self.sql)
        return first(self, *args)

    monkeypatch.setattr(Precompiled, "first", recording_first)
    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


def all_rows(app: Flask) -> list[tuple[Any, ...]]:
    """Every row of every flask-lucia table (a copy of the database)."""
    storage = app.extensions["lucia"].storage
    tables = (
        storage.users,
        storage.keys,
        storage.sessions,
        storage.access_tokens,
        storage.refresh_tokens,
    )
    with storage.engine.connect() as conn:
        return [tuple(row) for table in tables for row in conn.execute(sa.select(table))]


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) for one test; what it received, by recipient."""
    yield from serve_mail()


@pytest.fixture(scope="session")
def browser_port() -> int:
    """The port of the OAuth Chromium test's app, known before the provider registers it."""
    from .oidc import free_port

    return free_port()


@pytest.fixture(scope="session")
def oidc(browser_port: int) -> Iterator[Any]:
    """The OpenID Connect provider (tests/oidc), one for the whole run."""
    from .oidc import OIDCProvider

    provider = OIDCProvider(browser_port)
    yield provider
    provider.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI no test may be skipped: a skip fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; no test may be skipped under CI")
        session.exitstatus = 1
