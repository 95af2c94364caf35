"""The extension: init_app, config defaults, per-app state, storage wiring, interop."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_lucia import Lucia, LuciaError
from flask_lucia.core.auth import Auth

from .conftest import (
    ORIGIN,
    PASSWORD,
    TEST_DATABASE_URL,
    all_rows,
    sign_up,
    unique_prefix,
    user_columns,
)


def new_app(tmp_path: Any) -> Flask:
    """A bare app, out of testing mode, that says where it lives (links need it)."""
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["LUCIA_BASE_URL"] = "http://localhost"
    return app


def test_init_app_in_a_factory_registers_the_blueprint_and_state(tmp_path: Any) -> None:
    lucia = Lucia()
    app = new_app(tmp_path)
    lucia.init_app(app)
    assert isinstance(app.extensions["lucia"], Auth)
    assert "lucia" in app.blueprints
    assert app.url_map.bind("localhost").match("/auth/session") == ("lucia.session_status", {})


def test_config_defaults_do_not_override_the_apps_values(tmp_path: Any) -> None:
    app = new_app(tmp_path)
    app.config["LUCIA_ACCESS_COOKIE_NAME"] = "at"
    Lucia(app)
    assert app.config["LUCIA_ACCESS_COOKIE_NAME"] == "at"
    assert app.config["LUCIA_REFRESH_COOKIE_NAME"] == "lucia_refresh_token"
    assert app.config["LUCIA_REFRESH_GRACE"] == timedelta(seconds=30)


def test_the_extension_object_holds_nothing_app_specific(tmp_path: Any) -> None:
    lucia = Lucia(user_columns=user_columns())
    lucia.init_app(new_app(tmp_path))
    assert set(vars(lucia)) == {
        "db",
        "user_model",
        "user_columns",
        "generate_user_id",
        "oauth_user_data",
        "send_email",
        "identifier_columns",
    }


def test_init_app_twice_on_one_app_raises(tmp_path: Any) -> None:
    app = new_app(tmp_path)
    Lucia(app)
    with pytest.raises(RuntimeError, match="already initialized"):
        Lucia(app)


def test_a_bad_config_value_fails_at_init_app_naming_the_key(tmp_path: Any) -> None:
    app = new_app(tmp_path)
    app.config["LUCIA_ACCESS_TOKEN_TTL"] = "15 minutes"
    with pytest.raises(TypeError, match="LUCIA_ACCESS_TOKEN_TTL"):
        Lucia(app)


def test_two_apps_with_different_databases_stay_apart(make_app: Any, tmp_path: Any) -> None:
    lucia = Lucia(user_columns=user_columns())
    first = make_app(lucia, LUCIA_DATABASE_URL=f"sqlite:///{tmp_path / 'one.db'}")
    second = make_app(lucia, LUCIA_DATABASE_URL=f"sqlite:///{tmp_path / 'two.db'}")
    with first.app_context():
        user = lucia.create_user("email", "a@example.com", user_data={"username": "ann"})
    with second.app_context():
        with pytest.raises(LuciaError):
            lucia.get_user(user.user_id)
        lucia.create_user("email", "a@example.com", user_data={"username": "ann"})
    assert len(all_rows(first)) == len(all_rows(second)) == 2  # the user and its key


def test_two_apps_on_one_database_with_different_prefixes_stay_apart(
    make_app: Any, tmp_path: Any
) -> None:
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shared.db'}"
    lucia = Lucia(user_columns=user_columns())
    one, two = unique_prefix("one_"), unique_prefix("two_")
    first = make_app(lucia, LUCIA_TABLE_PREFIX=one, LUCIA_DATABASE_URL=url)
    second = make_app(lucia, LUCIA_TABLE_PREFIX=two, LUCIA_DATABASE_URL=url)
    with first.app_context():
        lucia.create_user("email", "a@example.com")
        assert first.extensions["lucia"].storage.users.name == f"{one}users"
    with second.app_context(), pytest.raises(LuciaError):
        lucia.get_user_by_provider_id("email", "a@example.com")


def test_the_default_database_is_sqlite_in_the_instance_folder_in_wal_mode(
    make_app: Any,
) -> None:
    app = make_app(LUCIA_DATABASE_URL=None, LUCIA_TABLE_PREFIX="lucia_")
    with app.app_context():
        app.lucia.create_user("email", "a@example.com")
        engine = app.extensions["lucia"].storage.engine
    assert os.path.exists(os.path.join(app.instance_path, "lucia.sqlite3"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 1 << 30


def test_tables_are_created_on_first_use(make_app: Any) -> None:
    app = make_app()
    storage = app.extensions["lucia"].storage
    assert storage._engine is None
    with app.app_context():
        names = sa.inspect(storage.engine).get_table_names()
    prefix = app.config["LUCIA_TABLE_PREFIX"]
    assert {
        f"{prefix}{t}" for t in ("users", "sessions", "access_tokens", "refresh_tokens")
    } <= set(names)


def test_create_tables_off_leaves_the_schema_to_the_app(make_app: Any) -> None:
    app = make_app(LUCIA_CREATE_TABLES=False, LUCIA_TABLE_PREFIX=unique_prefix("absent_"))
    with app.app_context():
        with pytest.raises(LuciaError) as excinfo:
            app.lucia.get_user("anyone")
        names = sa.inspect(app.extensions["lucia"].storage.engine).get_table_names()
    assert excinfo.value.code == "DATABASE_FETCH_FAILED"
    assert not any(name.startswith("absent_") for name in names)


def test_flask_sqlalchemy_shares_its_engine_and_metadata(tmp_path: Any) -> None:
    app = new_app(tmp_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'fsa.db'}"
    app.config["LUCIA_TABLE_PREFIX"] = "fsa_lucia_"
    db = SQLAlchemy(app)
    lucia = Lucia(app, db=db, user_columns=user_columns())
    assert "fsa_lucia_users" in db.metadata.tables
    with app.app_context():
        db.create_all()
        try:
            assert app.extensions["lucia"].storage.engine is db.engine
            user = lucia.create_user("email", "a@example.com", password=PASSWORD)
            assert lucia.authenticate_user("email", "a@example.com", PASSWORD) == user
        finally:
            db.drop_all()


def test_url_prefix_moves_the_endpoints(make_app: Any) -> None:
    app = make_app(LUCIA_URL_PREFIX="/account")
    assert app.test_client().get("/account/session").status_code == 401


def test_cookie_names_are_configurable(make_app: Any) -> None:
    app = make_app(LUCIA_ACCESS_COOKIE_NAME="at", LUCIA_REFRESH_COOKIE_NAME="rt")
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client)
    assert client.get_cookie("at") is not None and client.get_cookie("rt") is not None
    assert client.get("/auth/session").status_code == 200


def set_cookies(app: Flask) -> list[str]:
    client = app.test_client()
    response = client.post("/auth/sign-up", json={"identifier": "a@b.c", "password": PASSWORD})
    return response.headers.getlist("Set-Cookie")


def test_cookies_are_httponly_lax_root_path_with_the_token_lifetime(make_app: Any) -> None:
    access, refresh, device = set_cookies(make_app())
    assert device.startswith("lucia_device=") and "Max-Age=31536000" in device
    for value in (access, refresh):
        assert "HttpOnly" in value and "SameSite=Lax" in value and "Path=/" in value
    assert "Max-Age=899" in access or "Max-Age=900" in access
    assert "Max-Age=1209599" in refresh or "Max-Age=1209600" in refresh


def test_cookies_are_not_secure_in_testing(make_app: Any) -> None:
    assert not any("Secure" in value for value in set_cookies(make_app()))


def test_cookies_are_secure_outside_debug_and_testing(make_app: Any) -> None:
    assert all(
        "Secure" in value
        for value in set_cookies(make_app(TESTING=False, LUCIA_BASE_URL="http://localhost"))
    )


def test_cookie_secure_can_be_forced(make_app: Any) -> None:
    assert all("Secure" in value for value in set_cookies(make_app(LUCIA_COOKIE_SECURE=True)))


def test_cookie_domain_and_samesite_are_configurable(make_app: Any) -> None:
    app = make_app(LUCIA_COOKIE_DOMAIN="example.com", LUCIA_COOKIE_SAMESITE="Strict")
    for value in set_cookies(app):
        assert "Domain=example.com" in value and "SameSite=Strict" in value


def test_lifetimes_accept_seconds(make_app: Any) -> None:
    app = make_app(LUCIA_ACCESS_TOKEN_TTL=60)
    with app.app_context():
        user = app.lucia.create_user("email", "a@example.com")
        session, _ = app.lucia.create_session(user.user_id)
    remaining = session.expires - datetime.now(timezone.utc)
    assert timedelta(seconds=55) < remaining <= timedelta(seconds=60)


def test_deleting_a_session_cascades_to_its_tokens(app: Flask, lucia: Lucia) -> None:
    user = lucia.create_user("email", "a@example.com")
    lucia.create_session(user.user_id)
    storage = app.extensions["lucia"].storage
    with storage.engine.begin() as conn:
        conn.execute(storage.sessions.delete())
    with storage.engine.connect() as conn:
        for table in (storage.access_tokens, storage.refresh_tokens):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_every_token_lookup_is_by_primary_key_or_index(app: Flask, lucia: Lucia) -> None:
    lucia.create_user("email", "a@example.com")
    storage = app.extensions["lucia"].storage
    inspector = sa.inspect(storage.engine)
    for table in (storage.access_tokens, storage.refresh_tokens):
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == ["digest"]
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes(table.name)}
        assert ("session_id",) in indexed
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes(storage.sessions.name)}
    assert ("user_id",) in indexed
