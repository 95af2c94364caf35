"""The request's user and session belong to the request (DESIGN §18): Flask reuses an app
context that a test holds open, and its ``g``, for every request made inside it, as the
Flask Mega-Tutorial's suite does; no request may see another request's user."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import current_user

from .conftest import ORIGIN, sign_up


def fresh_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def test_a_client_without_cookies_is_anonymous_inside_a_held_app_context(app: Flask) -> None:
    signed_in = fresh_client(app)
    sign_up(signed_in)

    with app.app_context():
        assert signed_in.get("/private").status_code == 200
        answer = fresh_client(app).get("/private", headers={"Accept": "application/json"})

    assert answer.status_code == 401


def test_a_revoked_bearer_token_is_refused_inside_a_held_app_context(app: Flask) -> None:
    token = fresh_client(app).post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": "correct horse battery"},
    )
    assert token.status_code == 201
    with app.app_context():
        user_id = current_user.user_id if current_user else None
        assert user_id is None  # no request: nobody
        lucia = app.lucia  # type: ignore[attr-defined]
        _, tokens = lucia.create_session(token.json["user"]["user_id"])
        bearer = {"Authorization": f"Bearer {tokens.access_token}"}
        client = fresh_client(app)
        assert client.get("/private", headers=bearer).status_code == 200
        lucia.invalidate_session(tokens.access_token)

        answer = client.get("/private", headers=bearer)

    assert answer.status_code == 401


def test_current_user_outside_a_request_is_anonymous_after_requests_in_the_context(
    app: Flask,
) -> None:
    client = fresh_client(app)
    sign_up(client)

    with app.app_context():
        client.get("/private")

        assert not current_user
