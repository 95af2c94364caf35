"""The Flask-Login port of docs/migrating-from-flask-login.rst, run as the guide says:
``examples/flask_login_port/before.py`` with users and posts, ``import_users``, then
``after.py`` on the same database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from examples.flask_login_port import after, before
from examples.flask_login_port.import_users import import_users
from flask_lucia import LuciaError

from .conftest import ORIGIN, TEST_DATABASE_URL


@pytest.fixture
def database_url(tmp_path: Any) -> Iterator[str]:
    """A database of its own (the example's tables are plainly named ``user`` and ``post``)."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'port.sqlite3'}"
        return
    name = f"port_{secrets.token_hex(4)}"
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def ported(database_url: str) -> Iterator[Any]:
    """The old app's database (ann: scrypt hash, one post; bob: pbkdf2 hash), imported."""
    old = before.create_app(database_url)
    with old.app_context():
        before.db.create_all()
    client = old.test_client()
    client.post(
        "/register", data={"email": "Ann@example.com", "username": "ann", "password": "ann pw 1"}
    )
    with old.app_context():
        bob = before.User(
            email="bob@example.com",
            username="bob",
            password_hash=generate_password_hash("bob pw 22", "pbkdf2"),
        )
        before.db.session.add(bob)
        ann = before.db.session.scalar(sa.select(before.User).filter_by(username="ann"))
        before.db.session.add(before.Post(title="Hello", author_id=ann.id))
        before.db.session.commit()
        before.db.engine.dispose()
    assert import_users(database_url) == 2
    app = after.create_app(database_url)
    yield app
    with app.app_context():
        after.db.engine.dispose()


def browser(app: Any) -> Any:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def test_old_users_sign_in_with_their_old_werkzeug_passwords(ported: Any) -> None:
    ann, bob = browser(ported), browser(ported)
    signed = [
        ann.post("/login", data={"email": "ann@example.com", "password": "ann pw 1"}),
        bob.post("/login", data={"email": "bob@example.com", "password": "bob pw 22"}),
    ]
    assert [response.status_code for response in signed] == [302, 302]
    assert bob.get("/posts").get_data(as_text=True) == "bob: "


def test_old_hashes_become_argon2id_at_the_next_sign_in(ported: Any) -> None:
    browser(ported).post("/login", data={"email": "bob@example.com", "password": "bob pw 22"})
    storage = ported.extensions["lucia"].storage
    with ported.app_context(), storage.engine.connect() as conn:
        stored = conn.execute(sa.select(storage.keys.c.hashed_password)).scalars().all()
    assert sorted(hashed.split("$")[1] for hashed in stored if hashed.startswith("$")) == [
        "argon2id"
    ]


def test_current_user_is_the_apps_user_with_its_posts(ported: Any) -> None:
    ann = browser(ported)
    ann.post("/login", data={"email": "ann@example.com", "password": "ann pw 1"})
    assert ann.get("/posts").get_data(as_text=True) == "ann: Hello"


def test_new_users_get_rows_of_the_apps_model(ported: Any) -> None:
    cat = browser(ported)
    registered = cat.post(
        "/register", data={"email": "cat@example.com", "username": "cat", "password": "cat pw 333"}
    )
    with ported.app_context():
        row = after.db.session.scalar(sa.select(after.User).filter_by(username="cat"))
    assert registered.status_code == 302
    assert row is not None and row.email == "cat@example.com" and isinstance(row.id, int)
    assert cat.get("/posts").get_data(as_text=True) == "cat: "


def test_deleting_an_author_is_refused_and_deletes_nothing(ported: Any) -> None:
    with ported.app_context():
        ann = after.db.session.scalar(sa.select(after.User).filter_by(username="ann"))
        with pytest.raises(LuciaError) as refused:
            after.lucia.delete_user(ann.id)
        keys = after.lucia.get_user_provider_ids(ann.id)
    assert refused.value.code == "AUTH_USER_REFERENCED"
    assert keys == ["email:ann@example.com"]


def test_signing_out_ends_the_session(ported: Any) -> None:
    ann = browser(ported)
    ann.post("/login", data={"email": "ann@example.com", "password": "ann pw 1"})
    ann.post("/logout")
    assert ann.get("/posts", headers={"Accept": "application/json"}).status_code == 401


def test_an_unticked_remember_box_gives_browser_session_cookies(ported: Any) -> None:
    form = {"email": "ann@example.com", "password": "ann pw 1"}
    cookies = browser(ported).post("/login", data=form).headers.getlist("Set-Cookie")
    tokens = [c for c in cookies if c.startswith(("lucia_access_token=", "lucia_refresh_token="))]
    assert len(tokens) == 2 and not any("Max-Age" in c or "Expires" in c for c in tokens)


def test_a_ticked_remember_box_gives_lasting_cookies(ported: Any) -> None:
    form = {"email": "ann@example.com", "password": "ann pw 1", "remember": "y"}
    cookies = browser(ported).post("/login", data=form).headers.getlist("Set-Cookie")
    assert any(c.startswith("lucia_refresh_token=") and "Max-Age" in c for c in cookies)


def test_the_login_view_still_receives_anonymous_visitors(ported: Any) -> None:
    response = browser(ported).get("/posts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
