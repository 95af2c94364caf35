"""The testing helper apps use: one line signs a test client in."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_lucia.testing import sign_in_client


def test_sign_in_client_signs_a_test_client_in_as_a_user(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com", user_data={"username": "ann"})
    client = app.test_client()
    session = sign_in_client(client, user)
    assert client.get("/private").json == {"user_id": user.user_id, "username": "ann"}
    assert session.fresh and client.get("/fresh").json == {"ok": True}


def test_sign_in_client_accepts_a_user_id_and_lets_posts_through(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
    client = app.test_client()
    sign_in_client(client, user.user_id)
    assert client.post("/auth/sign-out", json={}).status_code == 200
    assert client.get("/auth/session").status_code == 401


def test_sign_in_client_can_give_a_stale_session(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
    client = app.test_client()
    sign_in_client(client, user, fresh=False)
    assert client.get("/fresh", headers={"Accept": "application/json"}).status_code == 401


def test_sign_in_client_uses_host_prefixed_cookie_names(make_app: Any) -> None:
    app = make_app(LUCIA_COOKIE_HOST_PREFIX=True)
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
    client = app.test_client()
    sign_in_client(client, user)
    assert client.get_cookie("__Host-lucia_access_token") is not None
    assert client.get("/auth/session").json["user"]["user_id"] == user.user_id
