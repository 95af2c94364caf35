"""API and native clients: ``"transport": "body"`` puts the tokens in the JSON body, sets and
clears no cookie, and refreshes from the body by the same rules as cookies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .conftest import ORIGIN, PASSWORD, AppFactory, Clock, cookie, sign_up

TOKEN_FIELDS = {"access_token", "refresh_token", "access_expires", "refresh_expires"}
EVIL = "https://evil.example"


def body_sign_in(client: FlaskClient, **extra: Any) -> TestResponse:
    body = {"identifier": "ann@example.com", "password": PASSWORD, "transport": "body"}
    return client.post("/auth/sign-in", json={**body, **extra})


def body_refresh(client: FlaskClient, refresh_token: Any, **headers: str) -> TestResponse:
    body = {"transport": "body", "refresh_token": refresh_token}
    return client.post("/auth/refresh", json=body, headers=headers)


def bearer(client: FlaskClient, access_token: str) -> TestResponse:
    return client.get("/private", headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A client like a native app's: no Origin header, no cookie jar in use."""
    with app.app_context():
        app.lucia.create_user(  # type: ignore[attr-defined]
            "email", "ann@example.com", password=PASSWORD, user_data={"username": "ann"}
        )
    return app.test_client(use_cookies=False)


# -- sign-in and sign-up -------------------------------------------------------------------


def test_a_body_sign_in_answers_the_tokens_and_the_usual_fields(api: FlaskClient) -> None:
    before = int(time.time() * 1000)
    response = body_sign_in(api)
    body = response.json
    assert response.status_code == 200
    assert set(body) == {"user", "session", *TOKEN_FIELDS}
    assert body["user"]["username"] == "ann" and body["session"]["checksum"]
    assert body["access_expires"] == body["session"]["expires"]
    assert 0 <= body["access_expires"] - before - 15 * 60_000 < 60_000
    assert 0 <= body["refresh_expires"] - before - 14 * 86_400_000 < 60_000
    assert all(isinstance(body[name], int) for name in ("access_expires", "refresh_expires"))
    assert response.headers["Cache-Control"] == "no-store"


def test_a_body_sign_in_sets_no_cookie(api: FlaskClient) -> None:
    assert body_sign_in(api).headers.getlist("Set-Cookie") == []


def test_a_body_access_token_works_as_a_bearer_token(api: FlaskClient) -> None:
    tokens = body_sign_in(api).json
    assert bearer(api, tokens["access_token"]).json["username"] == "ann"


def test_a_body_sign_up_answers_201_with_the_tokens_and_no_cookie(app: Flask) -> None:
    client = app.test_client(use_cookies=False)
    body = {"identifier": "bob@example.com", "password": PASSWORD, "transport": "body"}
    response = client.post("/auth/sign-up", json={**body, "username": "bob"})
    assert response.status_code == 201 and set(response.json) >= TOKEN_FIELDS
    assert response.headers.getlist("Set-Cookie") == []
    assert bearer(client, response.json["access_token"]).json["username"] == "bob"


def test_a_body_sign_in_with_a_wrong_password_is_the_usual_400(api: FlaskClient) -> None:
    response = body_sign_in(api, password="not the password")
    assert response.status_code == 400 and response.json["error"] == "AUTH_INVALID_PASSWORD"
    assert response.headers.getlist("Set-Cookie") == []


def test_a_body_sign_in_is_throttled_like_a_cookie_sign_in(make_app: AppFactory) -> None:
    app = make_app(LUCIA_THROTTLE_FREE_ATTEMPTS=2)
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)  # type: ignore[attr-defined]
    client = app.test_client(use_cookies=False)
    for _ in range(2):
        assert body_sign_in(client, password="wrong password").status_code == 400
    throttled = body_sign_in(client)  # even the right password waits
    assert throttled.status_code == 429 and throttled.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"
    assert "access_token" not in throttled.json and int(throttled.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up", "/auth/refresh"])
@pytest.mark.parametrize("transport", ["Body", "header", "", None, 1, ["body"]])
def test_an_unknown_transport_is_a_400(api: FlaskClient, path: str, transport: Any) -> None:
    body = {"identifier": "ann@example.com", "password": PASSWORD, "refresh_token": "x"}
    response = api.post(path, json={**body, "transport": transport})
    assert response.status_code == 400 and response.json["error"] == "AUTH_INVALID_REQUEST"
    assert "transport" in response.json["message"]
    assert response.headers.getlist("Set-Cookie") == []


def test_transport_cookie_is_the_default_spelled_out(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    body = {"identifier": "ann@example.com", "password": PASSWORD, "transport": "cookie"}
    response = client.post("/auth/sign-in", json=body)
    assert response.status_code == 200 and "access_token" not in response.json
    assert cookie(client, "lucia_access_token")


# -- the Origin check ----------------------------------------------------------------------


def body_sign_in_from(client: FlaskClient, origin: str) -> TestResponse:
    body = {"identifier": "ann@example.com", "password": PASSWORD, "transport": "body"}
    return client.post("/auth/sign-in", json=body, headers={"Origin": origin})


def test_a_body_sign_in_without_cookies_needs_no_origin_check(api: FlaskClient) -> None:
    response = body_sign_in_from(api, EVIL)
    assert response.status_code == 200 and "access_token" in response.json


def test_a_body_sign_in_carrying_auth_cookies_gets_the_origin_check(
    app: Flask, api: FlaskClient
) -> None:
    client = app.test_client()  # a browser, whose cookies a cross-site page can make it send
    client.set_cookie("lucia_refresh_token", "")  # present though empty: the hook skips it
    response = body_sign_in_from(client, EVIL)
    assert response.status_code == 403 and response.json["error"] == "AUTH_INVALID_REQUEST"


def test_a_body_sign_in_carrying_a_session_cookie_from_another_site_is_403(
    client: FlaskClient,
) -> None:
    sign_up(client)
    response = body_sign_in_from(client, EVIL)
    assert response.status_code == 403 and "access_token" not in response.json
    assert client.get("/auth/session").status_code == 200


def test_a_body_sign_in_from_a_signed_in_browser_leaves_its_cookies_alone(
    client: FlaskClient,
) -> None:
    sign_up(client)
    access = cookie(client, "lucia_access_token")
    response = body_sign_in_from(client, ORIGIN)
    assert response.status_code == 200 and response.headers.getlist("Set-Cookie") == []
    assert client.get("/auth/session").status_code == 200
    assert cookie(client, "lucia_access_token") == access


def test_a_body_refresh_from_another_site_with_auth_cookies_is_403(client: FlaskClient) -> None:
    sign_up(client)  # cookies in the jar
    tokens = body_sign_in_from(client, ORIGIN).json
    response = body_refresh(client, tokens["refresh_token"], Origin=EVIL)
    assert response.status_code == 403 and response.json["error"] == "AUTH_INVALID_REQUEST"
    assert body_refresh(client, tokens["refresh_token"]).status_code == 200  # not spent


# -- refresh -------------------------------------------------------------------------------


def test_a_body_refresh_rotates_and_the_new_pair_works_as_bearer(
    api: FlaskClient, clock: Clock
) -> None:
    first = body_sign_in(api).json
    clock.advance(60)
    response = body_refresh(api, first["refresh_token"])
    second = response.json
    assert response.status_code == 200 and response.headers.getlist("Set-Cookie") == []
    assert set(second) == {"expires", "checksum", *TOKEN_FIELDS}
    assert second["checksum"] == first["session"]["checksum"]  # the same session
    assert second["access_expires"] == second["expires"] == first["access_expires"] + 60_000
    assert second["refresh_expires"] == first["refresh_expires"] + 60_000
    assert bearer(api, second["access_token"]).status_code == 200
    assert bearer(api, first["access_token"]).status_code == 401  # the old one died


def test_a_body_refresh_takes_the_token_from_the_body_not_the_cookie(
    client: FlaskClient,
) -> None:
    sign_up(client)
    refresh_cookie = cookie(client, "lucia_refresh_token")
    response = client.post("/auth/refresh", json={"transport": "body"})
    assert response.status_code == 400 and "refresh_token" in response.json["message"]
    assert response.headers.getlist("Set-Cookie") == []
    assert cookie(client, "lucia_refresh_token") == refresh_cookie  # not spent


@pytest.mark.parametrize("token", [None, "", 42, ["x"]])
def test_a_body_refresh_without_a_string_token_is_a_400(api: FlaskClient, token: Any) -> None:
    response = body_refresh(api, token)
    assert response.status_code == 400 and response.json["error"] == "AUTH_INVALID_REQUEST"


@pytest.mark.parametrize("token", ["R" * 32, "not a token", "x" * 5000])
def test_a_refused_body_refresh_is_401_and_touches_no_cookie(
    client: FlaskClient, token: str
) -> None:
    sign_up(client)
    response = body_refresh(client, token)
    assert response.status_code == 401
    assert response.json["error"] == "AUTH_INVALID_REFRESH_TOKEN"
    assert response.headers.getlist("Set-Cookie") == []
    assert client.get("/auth/session").status_code == 200  # the browser session goes on


def test_a_body_refresh_replayed_within_the_grace_gets_the_same_pair(
    api: FlaskClient, clock: Clock
) -> None:
    first = body_sign_in(api).json
    once = body_refresh(api, first["refresh_token"]).json
    clock.advance(10)
    again = body_refresh(api, first["refresh_token"]).json
    assert (again["access_token"], again["refresh_token"]) == (
        once["access_token"],
        once["refresh_token"],
    )


def test_a_spent_body_refresh_token_replayed_after_the_grace_revokes_the_session(
    api: FlaskClient, clock: Clock
) -> None:
    first = body_sign_in(api).json
    second = body_refresh(api, first["refresh_token"]).json
    third = body_refresh(api, second["refresh_token"]).json  # the successor was used
    clock.advance(31)
    replayed = body_refresh(api, first["refresh_token"])
    assert replayed.status_code == 401
    assert replayed.json["error"] == "AUTH_INVALID_REFRESH_TOKEN"
    assert replayed.headers.getlist("Set-Cookie") == []
    assert bearer(api, third["access_token"]).status_code == 401
    assert body_refresh(api, third["refresh_token"]).status_code == 401


def test_a_stale_bearer_token_does_not_stop_a_body_refresh(api: FlaskClient, clock: Clock) -> None:
    first = body_sign_in(api).json
    clock.advance(16 * 60)
    response = api.post(
        "/auth/refresh",
        json={"transport": "body", "refresh_token": first["refresh_token"]},
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert response.status_code == 200 and "access_token" in response.json


def test_a_view_that_needs_a_session_answers_a_stale_bearer_with_401_json(
    api: FlaskClient, clock: Clock
) -> None:
    first = body_sign_in(api).json
    clock.advance(16 * 60)
    response = bearer(api, first["access_token"])  # Accept: */*, as requests sends
    assert response.status_code == 401 and response.json["error"] == "AUTH_NOT_AUTHENTICATED"
