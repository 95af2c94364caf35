"""The JSON endpoints of DESIGN §3: session, refresh, sign-out, sign-in, sign-up."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import ORIGIN, PASSWORD, Clock, cookie, sign_up

ACCESS, REFRESH = "lucia_access_token", "lucia_refresh_token"


def cleared(response: Any) -> bool:
    values = response.headers.getlist("Set-Cookie")
    return any(v.startswith(f"{ACCESS}=;") for v in values) and any(
        v.startswith(f"{REFRESH}=;") for v in values
    )


def sign_in(client: FlaskClient, identifier: str, password: str) -> Any:
    return client.post("/auth/sign-in", json={"identifier": identifier, "password": password})


# -- GET /auth/session ---------------------------------------------------------------


def test_session_answers_the_user_expiry_and_checksum(client: FlaskClient) -> None:
    body = sign_up(client, username="ann")
    response = client.get("/auth/session")
    assert response.status_code == 200
    assert response.json == body
    assert set(response.json["user"]) == {"user_id", "username", "age"}
    assert len(response.json["session"]["checksum"]) == 32
    assert response.headers["Cache-Control"] == "no-store"


def test_session_without_a_session_is_401(client: FlaskClient) -> None:
    response = client.get("/auth/session")
    assert response.status_code == 401
    assert response.json["error"] == "AUTH_NOT_AUTHENTICATED"


def test_session_shows_only_the_public_user_columns(make_app: Any) -> None:
    app = make_app(LUCIA_PUBLIC_USER_COLUMNS=["username"])
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client, username="ann", age=30)
    assert set(client.get("/auth/session").json["user"]) == {"user_id", "username"}


# -- POST /auth/refresh --------------------------------------------------------------


def test_refresh_rotates_the_cookies_and_answers_the_new_expiry(
    client: FlaskClient, clock: Clock
) -> None:
    body = sign_up(client)
    old = cookie(client, REFRESH)
    clock.advance(60)
    response = client.post("/auth/refresh")
    assert response.status_code == 200
    assert response.json["expires"] == body["session"]["expires"] + 60_000
    assert response.json["checksum"] == body["session"]["checksum"]
    assert cookie(client, REFRESH) != old
    assert client.get("/auth/session").status_code == 200


def test_refresh_with_an_invalid_token_is_401_and_clears_the_cookies(
    client: FlaskClient,
) -> None:
    client.set_cookie(REFRESH, "R" * 32)
    response = client.post("/auth/refresh")
    assert response.status_code == 401
    assert response.json["error"] == "AUTH_INVALID_REFRESH_TOKEN"
    assert cleared(response)


def test_refresh_without_a_refresh_cookie_is_401(client: FlaskClient) -> None:
    response = client.post("/auth/refresh")
    assert response.status_code == 401
    assert response.json["error"] == "AUTH_INVALID_REFRESH_TOKEN"


def test_refresh_with_a_spent_token_after_the_grace_is_401_and_revokes(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    stolen = cookie(client, REFRESH)
    client.post("/auth/refresh")
    clock.advance(5 * 60 + 1)  # past the grace and the touch interval
    client.get("/auth/session")  # the new pair is in use
    thief = app.test_client()
    thief.set_cookie(REFRESH, stolen)
    assert thief.post("/auth/refresh", headers={"Origin": ORIGIN}).status_code == 401
    assert client.get("/auth/session").status_code == 401


def test_refresh_after_a_lost_answer_keeps_the_browser_signed_in(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    access, refresh = cookie(client, ACCESS), cookie(client, REFRESH)
    assert client.post("/auth/refresh").status_code == 200
    client.set_cookie(ACCESS, access or "")  # the answer never arrived: old cookies
    client.set_cookie(REFRESH, refresh or "")
    clock.advance(60)
    assert client.post("/auth/refresh").status_code == 200
    assert cookie(client, REFRESH) != refresh
    assert client.get("/auth/session").status_code == 200


def test_refresh_from_another_site_is_403(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post("/auth/refresh", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json["error"] == "AUTH_INVALID_REQUEST"


# -- POST /auth/sign-out -------------------------------------------------------------


def test_sign_out_clears_the_cookies_and_ends_the_session(client: FlaskClient) -> None:
    sign_up(client)
    access = cookie(client, ACCESS)
    response = client.post("/auth/sign-out", json={})
    assert response.json == {"redirect": None}
    assert cleared(response)
    client.set_cookie(ACCESS, access)
    assert client.get("/auth/session").status_code == 401


def test_sign_out_is_idempotent(client: FlaskClient) -> None:
    assert client.post("/auth/sign-out", json={}).status_code == 200
    assert client.post("/auth/sign-out", json={}).status_code == 200


def test_sign_out_answers_a_same_origin_redirect(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post("/auth/sign-out", json={"redirect": "/goodbye?x=1"})
    assert response.json == {"redirect": "/goodbye?x=1"}


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://localhost.evil.example/",
        "\t//evil.example",
        42,
    ],
)
def test_sign_out_refuses_an_off_site_redirect(client: FlaskClient, target: Any) -> None:
    assert client.post("/auth/sign-out", json={"redirect": target}).json == {"redirect": None}


def test_sign_out_accepts_an_absolute_url_on_this_site(client: FlaskClient) -> None:
    response = client.post("/auth/sign-out", json={"redirect": f"{ORIGIN}/bye"})
    assert response.json == {"redirect": "/bye"}


def test_sign_out_from_another_site_is_403_and_keeps_the_session(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post("/auth/sign-out", json={}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get("/auth/session").status_code == 200


def test_sign_out_from_a_form_redirects(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post("/auth/sign-out", data={"redirect": "/bye"})
    assert response.status_code == 303 and response.location == "/bye"


# -- POST /auth/sign-in --------------------------------------------------------------


def test_sign_in_answers_the_user_and_session_and_sets_cookies(client: FlaskClient) -> None:
    body = sign_up(client, username="ann")
    client.post("/auth/sign-out", json={})
    response = sign_in(client, "ann@example.com", PASSWORD)
    assert response.status_code == 200
    assert response.json["user"] == body["user"]
    assert len(response.headers.getlist("Set-Cookie")) == 2
    assert client.get("/auth/session").status_code == 200


def test_sign_in_wrong_password_and_unknown_user_answer_alike(client: FlaskClient) -> None:
    sign_up(client)
    wrong = sign_in(client, "ann@example.com", "wrong password")
    unknown = sign_in(client, "nobody@example.com", "wrong password")
    too_long = sign_in(client, "x" * 300, "wrong password")
    assert wrong.status_code == unknown.status_code == too_long.status_code == 400
    assert wrong.json == unknown.json == too_long.json
    assert wrong.json["error"] == "AUTH_INVALID_PASSWORD"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {},
        {"identifier": "a@example.com"},
        {"password": PASSWORD},
        {"identifier": 5, "password": PASSWORD},
        {"identifier": "a@example.com", "password": ["x"]},
        {"identifier": "  ", "password": PASSWORD},
    ],
)
def test_sign_in_with_a_malformed_body_is_400(client: FlaskClient, body: Any) -> None:
    response = client.post("/auth/sign-in", json=body)
    assert response.status_code == 400
    assert response.json["error"] == "AUTH_INVALID_REQUEST"
    assert response.json["message"]


def test_sign_in_with_a_non_json_body_is_400(client: FlaskClient) -> None:
    response = client.post("/auth/sign-in", data="{not json", content_type="application/json")
    assert response.status_code == 400


def test_sign_in_from_another_site_is_403(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post(
        "/auth/sign-in",
        json={"identifier": "ann@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_sign_in_from_a_non_browser_client_needs_no_origin(app: Flask, client: FlaskClient) -> None:
    sign_up(client)
    response = app.test_client().post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200


# -- POST /auth/sign-up --------------------------------------------------------------


def test_sign_up_creates_the_user_signs_in_and_answers_201(client: FlaskClient) -> None:
    body = sign_up(client, username="ann", age=30)
    assert body["user"]["username"] == "ann" and body["user"]["age"] == 30
    assert client.get("/auth/session").json == body


def test_sign_up_ignores_fields_that_are_not_user_columns(app: Flask, client: FlaskClient) -> None:
    body = sign_up(client, username="ann", is_admin=True)
    assert "is_admin" not in body["user"]


def test_sign_up_with_a_taken_identifier_is_409(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post(
        "/auth/sign-up", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json["error"] == "AUTH_DUPLICATE_PROVIDER_ID"


def test_sign_up_with_a_taken_unique_column_is_409(client: FlaskClient) -> None:
    sign_up(client, "a@example.com", username="ann")
    response = client.post(
        "/auth/sign-up",
        json={"identifier": "b@example.com", "password": PASSWORD, "username": "ann"},
    )
    assert response.status_code == 409
    assert response.json["error"] == "AUTH_DUPLICATE_USER_DATA"


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"age": "old"}, "must be int"), ({"username": "x" * 99}, "at most 32 characters")],
)
def test_sign_up_with_a_bad_column_value_is_400(
    client: FlaskClient, extra: dict[str, Any], message: str
) -> None:
    response = client.post(
        "/auth/sign-up", json={"identifier": "a@example.com", "password": PASSWORD, **extra}
    )
    assert response.status_code == 400
    assert message in response.json["message"]
    assert client.get("/auth/session").status_code == 401


def test_sign_up_with_a_short_password_is_400(client: FlaskClient) -> None:
    response = client.post("/auth/sign-up", json={"identifier": "a@example.com", "password": "x"})
    assert response.status_code == 400
    assert response.json["error"] == "AUTH_INVALID_PASSWORD"
    assert "at least 8" in response.json["message"]


def test_every_json_error_has_an_error_code_and_a_message(client: FlaskClient) -> None:
    responses = [
        client.get("/auth/session"),
        client.post("/auth/refresh"),
        client.post("/auth/sign-in", json={}),
        client.post("/auth/sign-up", json={"identifier": "a@example.com", "password": "x"}),
    ]
    for response in responses:
        assert set(response.json) == {"error", "message"}, response.json


def test_sign_up_sets_only_the_sign_up_columns(make_app: Any) -> None:
    app = make_app(LUCIA_SIGN_UP_COLUMNS=["username"])
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    body = sign_up(client, username="ann", age=99)
    assert body["user"]["username"] == "ann" and body["user"]["age"] is None
