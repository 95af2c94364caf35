"""Upgrading in place: a database made by flask-lucia 0.1 (schema 1) moves to keys (schema 2)
keeping every user, password hash, live session and revoked session as they were."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.security import generate_password_hash

from flask_lucia import LuciaError
from flask_lucia.core.passwords import PasswordHasher
from flask_lucia.core.store.schema import SCHEMA_VERSION
from flask_lucia.core.tokens import digest, new_token

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, AppFactory, unique_prefix, user_columns
from .schema_v1 import v1_tables

HOUR = 3600 * 1000


class OldDatabase:
    """A schema-1 database with three users, a live and a revoked session, and an app table
    (``posts``) whose rows point at a user."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(
                self.engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON")
            )
        metadata = sa.MetaData()
        self.tables = v1_tables(metadata, prefix, user_columns())
        self.posts = sa.Table(
            f"{prefix}posts",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("author_id", sa.String(255), sa.ForeignKey(self.tables["users"].c.id)),
        )
        metadata.create_all(self.engine)
        self.metadata = metadata
        now = int(time.time() * 1000)
        self.live_access, self.live_refresh = new_token(), new_token()
        self.revoked_access, self.revoked_refresh = new_token(), new_token()
        t = self.tables
        with self.engine.begin() as conn:
            conn.execute(
                t["users"].insert(),
                [
                    {
                        "id": "ann-id",
                        "provider_id": "email:ann@example.com",
                        "hashed_password": PasswordHasher().hash(PASSWORD),
                        "username": "ann",
                        "age": None,
                    },
                    {
                        "id": "bob-id",
                        "provider_id": "email:bob@example.com",
                        "hashed_password": generate_password_hash("bob's password", "pbkdf2"),
                        "username": "bob",
                        "age": 41,
                    },
                    {
                        "id": "cat-id",
                        "provider_id": "github:42",
                        "hashed_password": None,
                        "username": None,
                        "age": None,
                    },
                ],
            )
            for sid, access, refresh in (
                ("live", self.live_access, self.live_refresh),
                ("revoked", self.revoked_access, self.revoked_refresh),
            ):
                conn.execute(
                    t["sessions"]
                    .insert()
                    .values(
                        id=sid,
                        user_id="ann-id",
                        created_at=now,
                        expires_at=now + 24 * HOUR,
                        idle_expires_at=now + 24 * HOUR,
                        fresh_until=0,
                        last_used_at=now,
                    )
                )
                conn.execute(
                    t["access_tokens"]
                    .insert()
                    .values(digest=digest(access), session_id=sid, expires_at=now + HOUR)
                )
                conn.execute(
                    t["refresh_tokens"]
                    .insert()
                    .values(digest=digest(refresh), session_id=sid, expires_at=now + 24 * HOUR)
                )
            conn.execute(t["sessions"].delete().where(t["sessions"].c.id == "revoked"))
            conn.execute(self.posts.insert().values(id=1, author_id="ann-id"))

    def drop(self) -> None:
        """Drop every table the test made, whatever schema they ended in."""
        metadata = sa.MetaData()
        # Only this test's tables: others in a shared database may vanish while it looks.
        metadata.reflect(self.engine, only=lambda name, _: name.startswith(self.prefix))
        metadata.drop_all(self.engine)
        self.engine.dispose()


@pytest.fixture
def old(tmp_path: Any) -> Any:
    database = OldDatabase(
        TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'v1.sqlite3'}", unique_prefix("v1_")
    )
    yield database
    database.drop()


def _app(make_app: AppFactory, old: OldDatabase, **config: Any) -> Flask:
    app = make_app(LUCIA_DATABASE_URL=old.url, LUCIA_TABLE_PREFIX=old.prefix, **config)
    app.extensions["lucia"].storage.dispose = lambda: None  # the fixture drops what it made
    return app


def _browser(app: Flask, access: str, refresh: str) -> Any:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    client.set_cookie("lucia_access_token", access)
    client.set_cookie("lucia_refresh_token", refresh)
    return client


def test_first_use_upgrades_a_schema_1_database(make_app: AppFactory, old: OldDatabase) -> None:
    app = _app(make_app, old)
    lucia = app.lucia  # type: ignore[attr-defined]

    with app.app_context():
        ann = lucia.authenticate_user("email", "ann@example.com", PASSWORD)
        bob = lucia.authenticate_user("email", "bob@example.com", "bob's password")
        cat = lucia.get_user_by_provider_id("github", "42")
        keys = {uid: lucia.get_user_provider_ids(uid) for uid in ("ann-id", "bob-id", "cat-id")}

    assert (ann.user_id, ann.provider_id, ann.username) == (
        "ann-id",
        "email:ann@example.com",
        "ann",
    )
    assert (bob.user_id, bob.username, bob.age) == ("bob-id", "bob", 41)
    assert cat.user_id == "cat-id"
    assert keys == {
        "ann-id": ["email:ann@example.com"],
        "bob-id": ["email:bob@example.com"],
        "cat-id": ["github:42"],
    }


def test_an_upgrade_keeps_live_sessions_live_and_revoked_ones_revoked(
    make_app: AppFactory, old: OldDatabase
) -> None:
    app = _app(make_app, old)

    live = _browser(app, old.live_access, old.live_refresh).get("/auth/session")
    revoked = _browser(app, old.revoked_access, old.revoked_refresh).get("/auth/session")
    refreshed = _browser(app, "", old.live_refresh).post("/auth/refresh")

    assert live.status_code == 200 and live.json["user"]["user_id"] == "ann-id"
    assert revoked.status_code == 401
    assert refreshed.status_code == 200


def test_an_upgrade_keeps_old_sessions_remembered(make_app: AppFactory, old: OldDatabase) -> None:
    app = _app(make_app, old)

    refreshed = _browser(app, "", old.live_refresh).post("/auth/refresh")

    cookies = [v for v in refreshed.headers.getlist("Set-Cookie") if v.startswith("lucia_")]
    assert refreshed.status_code == 200 and len(cookies) == 2
    assert all("Max-Age=" in value for value in cookies)
    with app.app_context():
        (session,) = app.lucia.get_user_sessions("ann-id")  # type: ignore[attr-defined]
    assert session.remember is True


def test_an_upgrade_keeps_the_apps_foreign_keys_into_users(
    make_app: AppFactory, old: OldDatabase
) -> None:
    app = _app(make_app, old)
    with app.app_context():
        app.lucia.get_user("ann-id")  # type: ignore[attr-defined]  # first use: the upgrade
        with pytest.raises(LuciaError) as refused:
            app.lucia.delete_user("ann-id")  # type: ignore[attr-defined]
        app.lucia.delete_user("bob-id")  # type: ignore[attr-defined]
        ann = app.lucia.get_user("ann-id")  # type: ignore[attr-defined]
    with old.engine.connect() as conn:
        authors = conn.execute(sa.select(old.posts.c.author_id)).scalars().all()
    assert refused.value.code == "AUTH_USER_REFERENCED"
    assert ann.username == "ann" and authors == ["ann-id"]


def test_without_create_tables_an_old_schema_answers_503_until_upgrade_db(
    make_app: AppFactory, old: OldDatabase
) -> None:
    app = _app(make_app, old, LUCIA_CREATE_TABLES=False)
    before = _browser(app, old.live_access, old.live_refresh).get("/auth/session")

    result = app.test_cli_runner().invoke(args=["lucia", "upgrade-db"])

    app.extensions["lucia"].storage._engine = None  # a new process would start afresh
    after = _browser(app, old.live_access, old.live_refresh).get("/auth/session")
    assert before.status_code == 503 and "flask lucia upgrade-db" in before.json["message"]
    assert result.exit_code == 0, result.output
    assert result.output == f"upgraded the schema from version 1 to {SCHEMA_VERSION}\n"
    assert after.status_code == 200


def test_upgrade_db_on_a_current_database_changes_nothing(
    make_app: AppFactory, old: OldDatabase
) -> None:
    app = _app(make_app, old)
    runner = app.test_cli_runner()
    runner.invoke(args=["lucia", "upgrade-db"])

    result = runner.invoke(args=["lucia", "upgrade-db"])

    assert result.exit_code == 0
    assert result.output == f"the schema is at version {SCHEMA_VERSION}; nothing to upgrade\n"


def test_an_upgrade_adds_the_first_use_column_and_records_an_old_tokens_first_use(
    make_app: AppFactory, old: OldDatabase
) -> None:
    app = _app(make_app, old)

    assert _browser(app, old.live_access, old.live_refresh).get("/auth/session").status_code == 200

    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(storage.access_tokens.name)}
        used_at = conn.execute(
            sa.select(storage.access_tokens.c.used_at).where(
                storage.access_tokens.c.digest == digest(old.live_access)
            )
        ).scalar_one()
    assert "used_at" in columns
    assert used_at is not None  # a replay of whatever was spent into it is theft now
