"""examples/flaskr_port: Flask's tutorial app on raw sqlite3 with flask-lucia's pages,
its users a plain ``Table`` (no Flask-SQLAlchemy)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from examples.flaskr_port import create_app, init_db

from .conftest import ORIGIN, PASSWORD


@pytest.fixture
def flaskr(tmp_path: Any) -> Iterator[Flask]:
    database = tmp_path / "flaskr.sqlite"
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "DATABASE": str(database),
            "LUCIA_DATABASE_URL": f"sqlite:///{database}",
        }
    )
    with app.app_context():
        init_db()
    yield app
    app.extensions["lucia"].storage.dispose()


def browser(app: Flask) -> Any:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def register(client: Any, username: str) -> None:
    form = {"identifier": username, "password": PASSWORD, "next": "/"}
    assert client.post("/auth/sign-up", data=form).status_code == 303


def test_a_new_user_signs_up_on_the_built_in_page_and_posts(flaskr: Flask) -> None:
    client = browser(flaskr)
    register(client, "ann")
    assert client.post("/create", data={"title": "Hi", "body": "x"}).status_code == 302
    assert client.get("/").text == "Hi by ann"


def test_posting_needs_a_sign_in(flaskr: Flask) -> None:
    response = browser(flaskr).get("/create")
    assert response.status_code == 302 and "/auth/sign-in" in response.headers["Location"]


def test_init_db_leaves_no_way_in_for_the_users_it_dropped(flaskr: Flask) -> None:
    ann = browser(flaskr)
    register(ann, "ann")
    with flaskr.app_context():
        init_db()  # ids start at 1 again
    register(browser(flaskr), "bob")  # bob is user 1 now
    old = {"identifier": "ann", "password": PASSWORD}
    assert browser(flaskr).post("/auth/sign-in", json=old).status_code == 400
    assert ann.get("/create").status_code == 302  # ann's old session is gone
