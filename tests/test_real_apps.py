"""Real apps, round two (DESIGN §21): a plain declarative model whose ``email`` and
``username`` columns follow the keys, sign-in by either, orphaned rows, start-up checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_lucia import Lucia, LuciaError, current_user, login_required
from flask_lucia.messages import for_error

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, unique_prefix


class Made:
    """An app on a plain SQLAlchemy model (no Flask-SQLAlchemy) with required ``email``
    and ``username`` columns filled from the keys."""

    def __init__(self, tmp_path: Any, **config: Any) -> None:
        prefix = unique_prefix("ra_")

        class Base(DeclarativeBase):
            pass

        class User(Base):
            __tablename__ = f"{prefix}user"
            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str] = mapped_column(sa.String(255), unique=True)
            username: Mapped[str] = mapped_column(sa.String(64), unique=True)

        self.prefix, self.User, self.mails = prefix, User, list[EmailMessage]()
        self.url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'real.sqlite3'}"
        app = Flask(__name__, instance_path=str(tmp_path))
        app.config.update(
            TESTING=True,
            SECRET_KEY="test",
            WTF_CSRF_ENABLED=False,  # the forms are posted as they are; the Origin check stays
            LUCIA_DATABASE_URL=self.url,
            LUCIA_TABLE_PREFIX=prefix,
            LUCIA_PASSWORD_PROVIDERS=["email", "username"],
            LUCIA_PUBLIC_USER_COLUMNS=["email", "username"],
        )
        app.config.update(config)
        self.lucia = Lucia(
            app,
            user_model=User,
            identifier_columns={"email": "email", "username": "username"},
            send_email=self.mails.append,
        )

        @app.get("/me")
        @login_required
        def me() -> dict[str, Any]:
            return {"email": current_user.email, "username": current_user.username}

        self.app = app
        with app.app_context():
            self.lucia.create_tables()

    def client(self) -> Any:
        client = self.app.test_client()
        client.environ_base["HTTP_ORIGIN"] = ORIGIN
        return client

    def row(self, user_id: int) -> Any:
        with self.app.app_context():
            engine = self.app.extensions["lucia"].storage.engine
            table = self.User.__table__
            with engine.connect() as conn:
                return conn.execute(sa.select(table).where(table.c.id == user_id)).one()

    def drop(self) -> None:
        with self.app.app_context():
            storage = self.app.extensions["lucia"].storage
            storage.metadata.drop_all(storage.engine)
            storage.dispose()


@pytest.fixture
def made(tmp_path: Any) -> Iterator[Made]:
    made = Made(tmp_path)
    yield made
    made.drop()


def sign_up_ann(client: Any) -> dict[str, Any]:
    body = {"email": "Ann@Example.com", "username": "ann", "password": PASSWORD}
    response = client.post("/auth/sign-up", json=body)
    assert response.status_code == 201, response.json
    return dict(response.json)


# -- identifier_columns --------------------------------------------------------------------


def test_sign_up_fills_the_models_required_columns_from_the_identifiers(made: Made) -> None:
    user = sign_up_ann(made.client())["user"]
    row = made.row(user["user_id"])
    assert (row.email, row.username) == ("ann@example.com", "ann")


def test_sign_up_makes_one_key_per_password_provider(made: Made) -> None:
    user = sign_up_ann(made.client())["user"]
    with made.app.app_context():
        keys = made.lucia.get_user_provider_ids(user["user_id"])
    assert keys == ["email:ann@example.com", "username:ann"]


def test_update_user_provider_id_keeps_the_column_in_step(made: Made) -> None:
    user_id = sign_up_ann(made.client())["user"]["user_id"]
    with made.app.app_context():
        made.lucia.update_user_provider_id(user_id, "username", "annie")
    assert made.row(user_id).username == "annie"


def test_a_change_of_address_through_the_mailed_link_keeps_the_column_in_step(
    made: Made,
) -> None:
    client = made.client()
    user_id = sign_up_ann(client)["user"]["user_id"]
    made.mails.clear()
    response = client.post("/auth/change-email", json={"email": "new@example.com"})
    assert response.status_code == 200, response.json
    link = re.search(
        r'http://[^\s"]+/auth/change-email/[^\s"<]+', made.mails[-1].get_body().get_content()
    )
    assert link is not None
    assert client.get(link.group(0).replace("http://localhost", "")).status_code == 200
    assert made.row(user_id).email == "new@example.com"


# -- LUCIA_PASSWORD_PROVIDERS ----------------------------------------------------------------


@pytest.mark.parametrize("typed", ["ann", "ANN@example.com"])
def test_sign_in_takes_either_identifier_in_one_field(made: Made, typed: str) -> None:
    sign_up_ann(made.client())
    client = made.client()
    response = client.post("/auth/sign-in", json={"identifier": typed, "password": PASSWORD})
    assert response.status_code == 200, response.json
    assert client.get("/me").json == {"email": "ann@example.com", "username": "ann"}


def test_the_sign_in_form_takes_the_username(made: Made) -> None:
    sign_up_ann(made.client())
    client = made.client()
    form = {"identifier": "ann", "password": PASSWORD, "remember": "y", "next": "/me"}
    response = client.post("/auth/sign-in", data=form)
    assert response.status_code == 303
    assert client.get("/me").json["username"] == "ann"


def test_the_sign_up_form_asks_for_each_identifier(made: Made) -> None:
    client = made.client()
    page = client.get("/auth/sign-up").text
    assert 'name="identifier"' in page and 'name="username"' in page
    form = {"identifier": "bob@example.com", "username": "bob", "password": PASSWORD}
    assert client.post("/auth/sign-up", data=form).status_code == 303
    assert client.get("/me").json == {"email": "bob@example.com", "username": "bob"}


def test_known_and_unknown_identifiers_cost_one_lookup_and_one_hash(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up_ann(made.client())
    auth = made.app.extensions["lucia"]
    hashes: list[object] = []
    verify = auth.hasher.verify
    monkeypatch.setattr(auth.hasher, "verify", lambda h, p: hashes.append(h) or verify(h, p))
    for typed in ("ann", "nobody"):
        client = made.client()
        body = {"identifier": typed, "password": "wrong password"}
        assert client.post("/auth/sign-in", json=body).status_code == 400
    assert len(hashes) == 2 and hashes[0] is not None and hashes[1] is None


def test_a_password_change_sets_it_for_every_key(made: Made) -> None:
    user_id = sign_up_ann(made.client())["user"]["user_id"]
    with made.app.app_context():
        made.lucia.update_user_password(user_id, "a new password 2")
        for provider, identifier in (("email", "ann@example.com"), ("username", "ann")):
            user = made.lucia.authenticate_user(provider, identifier, "a new password 2")
            assert user.id == user_id


def test_a_signed_in_request_stays_one_query(made: Made) -> None:
    client = made.client()
    sign_up_ann(client)
    with made.app.app_context():
        engine = made.app.extensions["lucia"].storage.engine
    client.get("/me")
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    from flask_lucia.core.store import engine as engine_module

    first = engine_module.Precompiled.first

    def counted(self: Any, engine: Any, params: Any) -> Any:
        queries.append(self.sql)
        return first(self, engine, params)

    engine_module.Precompiled.first = counted  # type: ignore[method-assign]
    try:
        assert client.get("/me").status_code == 200
    finally:
        engine_module.Precompiled.first = first  # type: ignore[method-assign]
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(queries) == 1


# -- user_model without Flask-SQLAlchemy -------------------------------------------------


def test_a_table_serves_as_user_model_with_a_database_url(tmp_path: Any) -> None:
    prefix = unique_prefix("rt_")
    users = sa.Table(
        f"{prefix}people",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40), nullable=True),
    )
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SECRET_KEY="t",
        LUCIA_DATABASE_URL=TEST_DATABASE_URL or f"sqlite:///{tmp_path / 't.sqlite3'}",
        LUCIA_TABLE_PREFIX=prefix,
        LUCIA_SIGN_UP_COLUMNS=["name"],
    )
    lucia = Lucia(app, user_model=users)
    with app.app_context():
        try:
            user = lucia.create_user("email", "t@example.com", user_data={"name": "Tess"})
            assert (user.user_id, user.provider_id, user.name) == (1, "email:t@example.com", "Tess")
        finally:
            storage = app.extensions["lucia"].storage
            storage.metadata.drop_all(storage.engine)


# -- orphaned rows ---------------------------------------------------------------------------


def recreate_users_table(made: Made) -> None:
    """What flaskr's init-db does: drop and recreate the users table behind our back."""
    with made.app.app_context():
        engine = made.app.extensions["lucia"].storage.engine
    table = made.User.__table__
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql(f'DROP TABLE "{table.name}"')
        else:
            conn.exec_driver_sql(f'DROP TABLE "{table.name}" CASCADE')
        table.create(conn)
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def test_an_old_password_does_not_sign_in_a_new_user_with_a_recycled_id(made: Made) -> None:
    old = made.client()
    ann_id = sign_up_ann(old)["user"]["user_id"]
    recreate_users_table(made)
    with made.app.app_context():
        bob = made.lucia.create_user(
            "username", "bob", password="bob's password", user_data={"email": "b@example.com"}
        )
        assert bob.id == ann_id  # the id came back
        with pytest.raises(LuciaError):
            made.lucia.authenticate_user("username", "ann", PASSWORD)
    gone = old.get("/me", headers={"Accept": "application/json"})
    assert gone.status_code == 401  # ann's old session signs nobody in


def test_a_new_user_with_a_recycled_id_sees_none_of_the_old_users_activity(made: Made) -> None:
    ann_id = sign_up_ann(made.client())["user"]["user_id"]
    recreate_users_table(made)
    with made.app.app_context():
        bob = made.lucia.create_user(
            "username", "bob", password="bob's password", user_data={"email": "b@example.com"}
        )
        assert bob.id == ann_id
    client = made.client()
    signed_in = client.post(
        "/auth/sign-in", json={"identifier": "bob", "password": "bob's password"}
    )
    assert signed_in.status_code == 200
    events = client.get("/auth/activity").get_json()["events"]
    kinds = sorted(event["kind"] for event in events)
    assert kinds == ["new_device", "sign_in"]  # bob's first sign-in, none of ann's


def test_create_tables_removes_and_reports_orphaned_rows(
    made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    sign_up_ann(made.client())
    recreate_users_table(made)
    with made.app.app_context():
        assert made.lucia.orphaned_rows() == {
            f"{made.prefix}keys": 2,
            f"{made.prefix}sessions": 1,
            f"{made.prefix}email_tokens": 1,  # the verification link mailed at sign-up
        }
        made.lucia.create_tables()
        assert made.lucia.orphaned_rows() == {}
    assert "rows whose user is gone" in caplog.text


def test_drop_tables_then_create_tables_recreates_them(made: Made) -> None:
    sign_up_ann(made.client())
    with made.app.app_context():
        made.lucia.drop_tables()
        created = made.lucia.create_tables()
        assert f"{made.prefix}keys" in created
        made.lucia.create_user("username", "cy", password=PASSWORD, user_data={"email": "c@x.io"})


# -- start-up checks -----------------------------------------------------------------------


def test_a_required_column_sign_up_cannot_fill_is_refused_at_start_up(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="'username' needs a value"):
        Made(tmp_path, LUCIA_PASSWORD_PROVIDERS=["email"])


def test_a_required_column_is_fine_when_sign_up_is_closed(tmp_path: Any) -> None:
    Made(tmp_path, LUCIA_PASSWORD_PROVIDERS=["email"], LUCIA_SIGN_UP=False).drop()


def test_identifier_columns_must_name_user_columns(tmp_path: Any) -> None:
    class Base(DeclarativeBase):
        pass

    class Person(Base):
        __tablename__ = unique_prefix("rp_") + "person"
        id: Mapped[int] = mapped_column(primary_key=True)

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["TESTING"] = True
    with pytest.raises(ValueError, match="'mail' is not a column"):
        Lucia(app, user_model=Person, identifier_columns={"email": "mail"})


def test_database_url_beside_db_warns(tmp_path: Any) -> None:
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        LUCIA_DATABASE_URL="sqlite:///elsewhere.db",
    )
    with pytest.warns(UserWarning, match="LUCIA_DATABASE_URL is ignored"):
        Lucia(app, db=SQLAlchemy(app))


def test_with_db_tables_are_not_created_by_a_request_and_create_all_suffices(
    tmp_path: Any,
) -> None:
    from flask_sqlalchemy import SQLAlchemy

    prefix = unique_prefix("rd_")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SECRET_KEY="t",
        SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'd.sqlite3'}",
        LUCIA_TABLE_PREFIX=prefix,
    )
    db = SQLAlchemy(app)
    Lucia(app, db=db)
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    body = {"identifier": "d@example.com", "password": PASSWORD}
    assert client.post("/auth/sign-up", json=body).status_code == 503  # no tables yet
    with app.app_context():
        assert not sa.inspect(db.engine).has_table(f"{prefix}schema")
        db.create_all()  # what the first migration does
    try:
        assert client.post("/auth/sign-up", json=body).status_code == 201
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()


# -- what a person reads ---------------------------------------------------------------------


def test_user_message_is_what_the_built_in_pages_say(made: Made) -> None:
    with made.app.app_context():
        assert LuciaError("AUTH_INVALID_PASSWORD").user_message == (
            "Wrong email or username or password."
        )
        waited = LuciaError("AUTH_TOO_MANY_ATTEMPTS", retry_after=240)
        assert waited.user_message == "Too many attempts. Try again in 4 minutes."
        assert for_error(LuciaError("AUTH_INVALID_USER_ID")) == (
            "This account does not exist any more."
        )
    assert LuciaError("AUTH_INVALID_PASSWORD").message == "The identifier or password is incorrect."
