"""``Lucia(app, db=db, user_model=User)``: the app's own model is the users table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy

from flask_lucia import Lucia, LuciaError, current_user, login_required

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, unique_prefix


class App:
    """An app with a Flask-SQLAlchemy ``User`` (``id_type`` primary key) and ``Post``."""

    def __init__(self, tmp_path: Any, id_type: Any = sa.Integer, **lucia: Any) -> None:
        prefix = unique_prefix("um_")
        app = Flask(__name__, instance_path=str(tmp_path))
        app.config.update(
            TESTING=True,
            SECRET_KEY="test",
            SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'um.db'}",
            LUCIA_TABLE_PREFIX=prefix,
            LUCIA_SIGN_UP_COLUMNS=["username"],
            LUCIA_PUBLIC_USER_COLUMNS=["username"],
        )
        db = SQLAlchemy(app)

        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = f"{prefix}user"
            id = db.Column(id_type, primary_key=True)
            username = db.Column(db.String(80), unique=True, nullable=False)
            posts = db.relationship("Post", back_populates="author")

        class Post(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = f"{prefix}post"
            id = db.Column(db.Integer, primary_key=True)
            title = db.Column(db.String(80), nullable=False)
            author_id = db.Column(id_type, db.ForeignKey(User.id), nullable=False)
            author = db.relationship(User, back_populates="posts")

        self.app, self.db, self.User, self.Post = app, db, User, Post
        self.lucia = Lucia(app, db=db, user_model=User, **lucia)

        @app.get("/me")
        @login_required
        def me() -> str:
            return render_template_string(
                "{{ current_user.username }} {{ current_user.id }} {{ n }}",
                n=len(current_user.posts),
            )

        @app.get("/name")
        @login_required
        def name() -> str:
            return render_template_string("{{ current_user.username }}")

        with app.app_context():
            db.create_all()

    def client(self) -> Any:
        client = self.app.test_client()
        client.environ_base["HTTP_ORIGIN"] = ORIGIN
        return client

    def drop(self) -> None:
        with self.app.app_context():
            self.db.drop_all()
            self.db.engine.dispose()


def sign_up_ann(client: Any) -> None:
    body = {"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"}
    assert client.post("/auth/sign-up", json=body).status_code == 201


@pytest.fixture
def made(tmp_path: Any) -> Iterator[App]:
    app = App(tmp_path)
    yield app
    app.drop()


def test_create_user_makes_a_row_of_the_apps_model(made: App) -> None:
    with made.app.app_context():
        user = made.lucia.create_user(
            "email", "ann@example.com", password=PASSWORD, user_data={"username": "ann"}
        )
        stored = made.db.session.get(made.User, user.id)
        keys = made.lucia.get_user_provider_ids(user.id)
    assert isinstance(user, made.User) and isinstance(user.id, int)
    assert stored is not None and stored.username == "ann"
    assert keys == ["email:ann@example.com"]


def test_current_user_is_an_instance_of_the_model_with_its_relationships(made: App) -> None:
    client = made.client()
    sign_up_ann(client)
    with made.app.app_context():
        ann = made.lucia.get_user_by_provider_id("email", "ann@example.com")
        made.db.session.add(made.Post(title="hello", author_id=ann.id))
        made.db.session.commit()
        ann_id = ann.id

    response = client.get("/me")

    assert response.status_code == 200
    assert response.get_data(as_text=True) == f"ann {ann_id} 1"


def test_a_signed_in_request_is_still_one_query(made: App) -> None:
    client = made.client()
    sign_up_ann(client)
    with made.app.app_context():
        engine = made.db.engine
    from flask_lucia.core.store.engine import Precompiled

    seen: list[str] = []
    first = Precompiled.first

    def recording(self: Precompiled, *args: Any) -> Any:
        seen.append(self.sql)
        return first(self, *args)

    listen = lambda *a: seen.append(a[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listen)
    Precompiled.first = recording  # type: ignore[method-assign]
    try:
        response = client.get("/name")
    finally:
        Precompiled.first = first  # type: ignore[method-assign]
        sa.event.remove(engine, "before_cursor_execute", listen)
    assert response.get_data(as_text=True) == "ann"
    assert len(seen) == 1, seen


def test_sign_in_with_the_model_sets_the_session_user(made: App) -> None:
    with made.app.app_context():
        made.lucia.create_user(
            "email", "ann@example.com", password=PASSWORD, user_data={"username": "ann"}
        )
    client = made.client()

    signed = client.post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
    )

    assert signed.status_code == 200
    assert signed.json["user"]["username"] == "ann"
    assert client.get("/name").get_data(as_text=True) == "ann"


def test_a_string_primary_key_takes_generated_ids(tmp_path: Any) -> None:
    made = App(tmp_path, sa.String(40), generate_user_id=lambda: "fixed-id")
    try:
        with made.app.app_context():
            user = made.lucia.create_user("email", "a@example.com", user_data={"username": "a"})
        assert user.id == "fixed-id"
    finally:
        made.drop()


def test_delete_user_of_an_author_is_refused_and_deletes_nothing(made: App) -> None:
    with made.app.app_context():
        ann = made.lucia.create_user("email", "a@example.com", user_data={"username": "ann"})
        made.db.session.add(made.Post(title="hello", author_id=ann.id))
        made.db.session.commit()
        with pytest.raises(LuciaError) as refused:
            made.lucia.delete_user(ann.id)
        made.db.session.rollback()
        keys = made.lucia.get_user_provider_ids(ann.id)
        still = made.db.session.get(made.User, ann.id)
    assert refused.value.code == "AUTH_USER_REFERENCED" and refused.value.status == 409
    assert keys == ["email:a@example.com"] and still is not None


def test_delete_user_without_rows_pointing_at_it_deletes_it(made: App) -> None:
    with made.app.app_context():
        ann = made.lucia.create_user("email", "a@example.com", user_data={"username": "ann"})
        made.lucia.delete_user(ann.id)
        with pytest.raises(LuciaError) as gone:
            made.lucia.get_user(ann.id)
    assert gone.value.code == "AUTH_INVALID_USER_ID"


def test_user_data_that_is_not_a_column_is_refused_and_writes_nothing(made: App) -> None:
    with made.app.app_context():
        with pytest.raises(ValueError, match="unknown user_data keys: is_admin"):
            made.lucia.create_user(
                "email", "a@example.com", user_data={"username": "a", "is_admin": True}
            )
        count = made.db.session.scalar(sa.select(sa.func.count()).select_from(made.User))
    assert count == 0


def test_a_user_model_with_a_two_column_primary_key_is_refused() -> None:
    db = SQLAlchemy()

    class Pair(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "pair_users"
        a = db.Column(db.Integer, primary_key=True)
        b = db.Column(db.Integer, primary_key=True)

    with pytest.raises(ValueError, match="one-column primary key"):
        Lucia(db=db, user_model=Pair)


def test_a_user_model_that_is_not_a_mapped_class_is_refused() -> None:
    with pytest.raises(TypeError, match="not a mapped model"):
        Lucia(db=SQLAlchemy(), user_model=dict)


def test_reading_columns_of_current_user_opens_no_orm_session(made: App) -> None:
    seen: list[bool] = []

    @made.app.get("/peek")
    @login_required
    def peek() -> str:
        name = current_user.username
        seen.append(made.db.session.registry.has())
        return name

    client = made.client()
    sign_up_ann(client)
    assert client.get("/peek").get_data(as_text=True) == "ann"
    assert seen == [False]


def test_a_change_to_current_user_is_saved_by_the_apps_commit(made: App) -> None:
    @made.app.post("/rename")
    @login_required
    def rename() -> str:
        current_user.username = "annie"
        made.db.session.commit()
        return "ok"

    client = made.client()
    sign_up_ann(client)
    client.post("/rename")
    assert client.get("/name").get_data(as_text=True) == "annie"


@pytest.fixture
def model_app(tmp_path: Any) -> Iterator[App]:
    made = App(tmp_path)
    yield made
    made.drop()


def test_totp_and_a_passkey_work_with_an_integer_user_model(model_app: App, clock: Any) -> None:
    import pyotp

    from .soft_authenticator import SoftAuthenticator

    client = model_app.client()
    sign_up_ann(client)
    secret = client.post("/auth/two-factor", json={}).json["secret"]
    first = pyotp.TOTP(secret).at(int(clock.now))
    assert (
        client.post("/auth/two-factor", json={"code": first, "secret": secret}).status_code == 200
    )
    key = SoftAuthenticator()
    options = client.post("/auth/passkeys/register/options", json={}).json
    registered = client.post(
        "/auth/passkeys/register/verify", json={"credential": key.create(options)}
    )
    clock.advance(30)

    pending = model_app.client()
    body = {"identifier": "ann@example.com", "password": PASSWORD}
    step1 = pending.post("/auth/sign-in", json=body)
    code = pyotp.TOTP(secret).at(int(clock.now))
    step2 = pending.post("/auth/two-factor/verify", json={"code": code})
    by_passkey = model_app.client()
    sign_in_options = by_passkey.post("/auth/passkeys/sign-in/options", json={}).json
    signed_in = by_passkey.post(
        "/auth/passkeys/sign-in/verify", json={"credential": key.get(sign_in_options)}
    )

    assert registered.status_code == 201
    assert step1.status_code == 401 and step1.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert step2.status_code == 200 and step2.json["user"]["user_id"] == 1
    assert signed_in.status_code == 200 and signed_in.json["user"]["user_id"] == 1
    assert by_passkey.get("/name").text == "ann"


def test_deleting_a_user_deletes_its_second_factors(model_app: App, clock: Any) -> None:
    import pyotp

    from .soft_authenticator import SoftAuthenticator

    client = model_app.client()
    sign_up_ann(client)
    secret = client.post("/auth/two-factor", json={}).json["secret"]
    code = pyotp.TOTP(secret).at(int(clock.now))
    client.post("/auth/two-factor", json={"code": code, "secret": secret})
    options = client.post("/auth/passkeys/register/options", json={}).json
    client.post(
        "/auth/passkeys/register/verify", json={"credential": SoftAuthenticator().create(options)}
    )

    with model_app.app.app_context():
        model_app.lucia.delete_user(1)
        schema = model_app.app.extensions["lucia"].storage.schema
        with model_app.db.engine.connect() as conn:
            left = [
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                for table in (schema.totp, schema.recovery_codes, schema.passkeys)
            ]
    assert left == [0, 0, 0]


def test_a_broken_model_in_another_registry_does_not_break_this_app(made: App) -> None:
    """Building ``current_user`` configures the app's own registry, not every registry in
    the process: another app's model with a relationship to a class that does not exist
    (or was garbage-collected, as between tests) is not this app's failure."""
    other = sa.orm.registry()

    class Orphan:
        pass

    table = sa.Table("orphan", other.metadata, sa.Column("id", sa.Integer, primary_key=True))
    other.map_imperatively(Orphan, table, properties={"ghost": sa.orm.relationship("Ghost")})
    try:
        client = made.client()
        client.post(
            "/auth/sign-up",
            json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
        )
        assert client.get("/name").get_data(as_text=True) == "ann"
    finally:
        other.dispose()
