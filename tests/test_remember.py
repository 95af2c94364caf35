"""Remember me: ``remember=False`` gives browser-session cookies (no ``Max-Age``, no
``Expires``), at sign-in and at every later rotation of that session."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_lucia.config import DEFAULTS, Settings
from flask_lucia.core.cookies import token_cookies

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, AppFactory, Clock, sign_up
from .test_forms import csrf_token

AUTH_COOKIES = ("lucia_access_token=", "lucia_refresh_token=")


def auth_cookies(response: TestResponse) -> list[str]:
    """The response's ``Set-Cookie`` values for the two auth cookies."""
    found = [v for v in response.headers.getlist("Set-Cookie") if v.startswith(AUTH_COOKIES)]
    assert len(found) == 2, response.headers
    return found


def lifetimes(response: TestResponse) -> list[str]:
    """The ``Max-Age`` and ``Expires`` attributes of the auth cookies the response sets."""
    return [
        attribute
        for value in auth_cookies(response)
        for attribute in value.split("; ")[1:]
        if attribute.startswith(("Max-Age=", "Expires="))
    ]


def persistent(response: TestResponse) -> bool:
    """True when both auth cookies have ``Max-Age`` and ``Expires``; False when neither has."""
    found = lifetimes(response)
    assert len(found) in (0, 4), found
    return bool(found)


def sign_in(client: FlaskClient, **extra: Any) -> TestResponse:
    body = {"identifier": "ann@example.com", "password": PASSWORD, **extra}
    response = client.post("/auth/sign-in", json=body)
    assert response.status_code == 200, response.json
    return response


@pytest.fixture
def ann(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})


def test_token_cookies_that_are_not_persistent_have_no_max_age_and_no_expires() -> None:
    settings = Settings.from_config({**DEFAULTS, "TESTING": True})
    for value in token_cookies(settings, "a", 900, "r", 3600, False, persistent=False):
        assert "Max-Age" not in value and "Expires" not in value and "HttpOnly" in value


def test_a_json_sign_in_remembers_by_default(client: FlaskClient, ann: None) -> None:
    assert persistent(sign_in(client))


def test_a_json_sign_in_with_remember_false_sets_browser_session_cookies(
    client: FlaskClient, ann: None
) -> None:
    response = sign_in(client, remember=False)
    assert not persistent(response)
    assert client.get("/private").status_code == 200


def test_a_json_sign_up_with_remember_false_sets_browser_session_cookies(
    client: FlaskClient,
) -> None:
    body = {"identifier": "ann@example.com", "password": PASSWORD, "remember": False}
    response = client.post("/auth/sign-up", json=body)
    assert response.status_code == 201 and not persistent(response)


@pytest.mark.parametrize("value", ["false", 0, None, [], "no"])
def test_a_remember_that_is_not_a_boolean_is_a_400(
    client: FlaskClient, ann: None, value: Any
) -> None:
    body = {"identifier": "ann@example.com", "password": PASSWORD, "remember": value}
    response = client.post("/auth/sign-in", json=body)
    assert response.status_code == 400 and response.json["error"] == "AUTH_INVALID_REQUEST"
    assert "remember" in response.json["message"]
    assert not response.headers.getlist("Set-Cookie")


def test_the_hook_rotation_of_a_forgetful_session_keeps_browser_session_cookies(
    client: FlaskClient, ann: None, clock: Clock
) -> None:
    sign_in(client, remember=False)
    clock.advance(16 * 60)  # the access token has expired: the hook rotates
    response = client.get("/private")
    assert response.status_code == 200 and not persistent(response)
    clock.advance(16 * 60)
    assert not persistent(client.get("/private"))  # and at the next rotation too


def test_a_refresh_of_a_forgetful_session_keeps_browser_session_cookies(
    client: FlaskClient, ann: None
) -> None:
    sign_in(client, remember=False)
    response = client.post("/auth/refresh")
    assert response.status_code == 200 and not persistent(response)


def test_the_rotation_of_a_remembered_session_keeps_max_age(
    client: FlaskClient, ann: None, clock: Clock
) -> None:
    sign_in(client)
    clock.advance(16 * 60)
    assert persistent(client.get("/private"))
    assert persistent(client.post("/auth/refresh"))


def test_sessions_remember_what_sign_in_chose(app: Flask, client: FlaskClient, ann: None) -> None:
    sign_in(client, remember=False)
    other = app.test_client()
    other.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_in(other)
    with app.app_context():
        user = app.lucia.get_user_by_provider_id("email", "ann@example.com")  # type: ignore[attr-defined]
        listed = app.lucia.get_user_sessions(user.user_id)  # type: ignore[attr-defined]
    assert sorted(session.remember for session in listed) == [False, True]


def test_sign_in_from_an_apps_view_takes_remember(app: Flask, client: FlaskClient) -> None:
    from flask_lucia import sign_in as sign_in_here

    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")  # type: ignore[attr-defined]

    @app.post("/magic")
    def magic() -> str:
        sign_in_here(user.user_id, remember=False)
        return "ok"

    assert not persistent(client.post("/magic"))


# -- the form ------------------------------------------------------------------------------


def form_sign_in(client: FlaskClient, **fields: Any) -> TestResponse:
    token = csrf_token(client.get("/auth/sign-in").text)
    data = {"csrf_token": token, "identifier": "ann@example.com", "password": PASSWORD, **fields}
    response = client.post("/auth/sign-in", data=data)
    assert response.status_code == 303, response.text
    return response


def test_the_sign_in_form_has_a_remember_me_box_ticked_by_default(client: FlaskClient) -> None:
    page = client.get("/auth/sign-in").text
    assert "Remember me" in page
    assert '<input type="hidden" name="remember" value="false">' in page
    assert '<input checked id="remember" name="remember" type="checkbox" value="y">' in page


def test_the_form_with_the_box_ticked_remembers(client: FlaskClient, ann: None) -> None:
    assert persistent(form_sign_in(client, remember=["false", "y"]))


def test_the_form_with_the_box_unticked_sets_browser_session_cookies(
    client: FlaskClient, ann: None
) -> None:
    assert not persistent(form_sign_in(client, remember="false"))


def test_a_form_without_the_remember_field_remembers(client: FlaskClient, ann: None) -> None:
    assert persistent(form_sign_in(client))  # an app's older sign-in template


# -- the schema ----------------------------------------------------------------------------


def test_a_schema_2_database_made_before_the_remember_column_gets_it(
    make_app: AppFactory, tmp_path: Any
) -> None:
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'v2.sqlite3'}"
    before = make_app(LUCIA_DATABASE_URL=url)
    prefix = before.config["LUCIA_TABLE_PREFIX"]
    with before.app_context():
        user = before.lucia.create_user("email", "ann@example.com")  # type: ignore[attr-defined]
        _, tokens = before.lucia.create_session(user.user_id)  # type: ignore[attr-defined]
        engine = before.extensions["lucia"].storage.engine
    with engine.begin() as conn:
        conn.exec_driver_sql(f'ALTER TABLE "{prefix}sessions" DROP COLUMN remember')

    after = make_app(LUCIA_DATABASE_URL=url, LUCIA_TABLE_PREFIX=prefix)
    client = after.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    client.set_cookie("lucia_refresh_token", tokens.refresh_token)
    refreshed = client.post("/auth/refresh")

    columns = {c["name"] for c in sa.inspect(engine).get_columns(f"{prefix}sessions")}
    assert "remember" in columns
    assert refreshed.status_code == 200 and persistent(refreshed)


def test_a_form_shown_again_after_a_failed_post_keeps_the_box_meaning_remember(
    make_app: Any,
) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    failed = client.post(
        "/auth/sign-in",
        data={"identifier": "ann@example.com", "password": "wrong password", "remember": "true"},
        headers={"Origin": ORIGIN},
    )
    box = '<input checked id="remember" name="remember" type="checkbox" value="y">'
    assert box in failed.get_data(as_text=True)
