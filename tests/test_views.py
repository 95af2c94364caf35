"""The JSON endpoints of DESIGN §3: session, refresh, sign-out, sign-in, sign-up."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from flask_lucia import Lucia, LuciaError

from .conftest import ORIGIN, PASSWORD, Clock, cookie, sign_up

ACCESS, REFRESH = "lucia_access_token", "lucia_refresh_token"


def cleared(response: Any) -> bool:
    values = response.headers.getlist("Set-Cookie")
    return any(v.startswith(f"{ACCESS}=;") for v in values) and any(
        v.startswith(f"{REFRESH}=;") for v in values
    )


class OriginClient(FlaskClient):
    """A test client that sends ``Origin`` like a browser on the same site."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_ORIGIN"] = ORIGIN


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


def test_sign_up_with_a_taken_email_in_other_case_is_409(client: FlaskClient) -> None:
    sign_up(client, "victim@example.com")
    response = client.post(
        "/auth/sign-up", json={"identifier": "Victim@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json["error"] == "AUTH_DUPLICATE_PROVIDER_ID"


def test_sign_in_finds_an_email_whatever_its_case(client: FlaskClient) -> None:
    sign_up(client, "ann@example.com")
    client.post("/auth/sign-out", json={})
    assert sign_in(client, " ANN@Example.com", PASSWORD).status_code == 200


def test_sign_up_with_an_identifier_that_is_not_an_email_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/auth/sign-up", json={"identifier": "not-an-email", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json["error"] == "AUTH_INVALID_REQUEST"
    assert "not a valid email address" in response.json["message"]
    assert client.get("/auth/session").status_code == 401


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


# -- user columns: what sign-up may set and the browser may see ------------------------


def secret_app(make_app: Any, **config: Any) -> Flask:
    """An app with a privileged and a secret user column, on the default column lists."""
    columns = [
        sa.Column("username", sa.String(32), nullable=True),
        sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
        sa.Column("totp_secret", sa.String(64), nullable=True, default="JBSWY3DPEHPK3PXP"),
    ]
    app: Flask = make_app(Lucia(user_columns=columns), **config)
    app.test_client_class = OriginClient

    @app.get("/page")
    def page() -> str:
        return render_template_string("{{ lucia_script() }}")

    return app


def test_sign_up_sets_no_user_column_by_default(make_app: Any) -> None:
    app = secret_app(make_app)
    client = app.test_client()
    body = sign_up(client, is_admin=True, username="ann", totp_secret="chosen")
    with app.app_context():
        user = app.lucia.get_user(body["user"]["user_id"])  # type: ignore[attr-defined]
    assert user.is_admin is False
    assert user.username is None and user.totp_secret == "JBSWY3DPEHPK3PXP"


def test_the_browser_sees_no_user_column_by_default(make_app: Any) -> None:
    app = secret_app(make_app)
    client = app.test_client()
    signed_up = sign_up(client)
    signed_in = client.post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    answers = [signed_up, signed_in.json, client.get("/auth/session").json]
    page = client.get("/page").text
    assert signed_up["user"]["user_id"] in page
    assert "JBSWY3DPEHPK3PXP" not in page and "totp_secret" not in page
    for answer in answers:
        assert answer["user"] == {"user_id": signed_up["user"]["user_id"]}


def test_the_listed_columns_are_the_ones_sign_up_sets_and_the_browser_sees(
    make_app: Any,
) -> None:
    app = secret_app(
        make_app, LUCIA_SIGN_UP_COLUMNS=["username"], LUCIA_PUBLIC_USER_COLUMNS=["username"]
    )
    client = app.test_client()
    body = sign_up(client, username="ann", is_admin=True)
    assert body["user"] == {"user_id": body["user"]["user_id"], "username": "ann"}
    assert client.get("/auth/session").json["user"] == body["user"]
    with app.app_context():
        assert app.lucia.get_user(body["user"]["user_id"]).is_admin is False  # type: ignore[attr-defined]


# -- LUCIA_SIGN_UP = False ---------------------------------------------------------------


def no_user(app: Flask, identifier: str = "ann@example.com") -> bool:
    with app.app_context():
        try:
            app.lucia.get_user_by_provider_id("email", identifier)  # type: ignore[attr-defined]
        except LuciaError as error:
            return error.code == "AUTH_INVALID_PROVIDER_ID"
    return False


def test_closed_sign_up_answers_json_404_and_creates_no_user(make_app: Any) -> None:
    app = make_app(LUCIA_SIGN_UP=False)
    response = app.test_client().post(
        "/auth/sign-up", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 404
    assert response.json == {"error": "AUTH_INVALID_REQUEST", "message": "Sign-up is closed."}
    assert no_user(app)


def test_closed_sign_up_answers_json_404_without_the_form_views(make_app: Any) -> None:
    app = make_app(LUCIA_SIGN_UP=False, LUCIA_REGISTER_VIEWS=False)
    client = app.test_client()
    response = client.post("/auth/sign-up", data={"identifier": "a@b.c", "password": PASSWORD})
    assert response.status_code == 404 and response.json["error"] == "AUTH_INVALID_REQUEST"
    assert client.get("/auth/sign-up").json["message"] == "Sign-up is closed."


# -- LUCIA_MAX_BODY_SIZE ------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


class CountingStream(io.BytesIO):
    """A request body that counts the bytes anyone reads from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self.taken += n
        return n


def huge_json(**fields: str) -> bytes:
    body = json.dumps(fields).encode()
    return body[:-1] + b', "padding": "' + b"x" * TEN_MB + b'"}'


def test_a_10_mb_sign_up_is_413_json_unread_and_touches_no_row(
    app: Flask, client: FlaskClient, queries: list[str]
) -> None:
    body = CountingStream(huge_json(identifier="ann@example.com", password=PASSWORD))
    response = client.post(
        "/auth/sign-up",
        input_stream=body,
        content_length=len(body.getvalue()),
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json == {
        "error": "AUTH_INVALID_REQUEST",
        "message": "The request body is too large.",
    }
    assert body.taken == 0 and queries == []
    assert no_user(app)


def test_a_10_mb_sign_in_password_is_413_before_the_throttle(
    client: FlaskClient, queries: list[str]
) -> None:
    body = CountingStream(
        json.dumps({"identifier": "ann@example.com", "password": "x" * TEN_MB}).encode()
    )
    response = client.post(
        "/auth/sign-in",
        input_stream=body,
        content_length=len(body.getvalue()),
        content_type="application/json",
    )
    assert response.status_code == 413 and response.json["error"] == "AUTH_INVALID_REQUEST"
    assert body.taken == 0 and queries == []


def test_a_streamed_body_without_content_length_is_cut_at_the_limit(
    app: Flask, client: FlaskClient
) -> None:
    body = CountingStream(huge_json(identifier="ann@example.com", password=PASSWORD))
    response = client.post(
        "/auth/sign-up",
        input_stream=body,
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},  # chunked: no Content-Length
    )
    assert response.status_code == 413 and response.json["error"] == "AUTH_INVALID_REQUEST"
    assert body.taken <= 64 * 1024 + 64 * 1024  # the limit, and at most one read past it
    assert no_user(app)


def test_a_form_post_over_the_limit_is_413(client: FlaskClient) -> None:
    response = client.post("/auth/sign-in", data={"identifier": "a@b.c", "password": "x" * 70_000})
    assert response.status_code == 413 and response.json["error"] == "AUTH_INVALID_REQUEST"


def test_a_body_at_the_limit_goes_through(make_app: Any) -> None:
    app = make_app(LUCIA_MAX_BODY_SIZE=200)
    client = app.test_client()
    fields = {"identifier": "ann@example.com", "password": PASSWORD}
    body = json.dumps({**fields, "pad": ""}).encode()
    body = json.dumps({**fields, "pad": "x" * (200 - len(body))}).encode()
    assert len(body) == 200
    assert (
        client.post("/auth/sign-up", data=body, content_type="application/json").status_code == 201
    )
    over = client.post("/auth/sign-up", data=body + b" ", content_type="application/json")
    assert over.status_code == 413


def test_an_app_max_content_length_below_the_limit_still_applies(make_app: Any) -> None:
    app = make_app(MAX_CONTENT_LENGTH=100)
    client = app.test_client()
    body = CountingStream(json.dumps({"identifier": "a@b.c", "password": "x" * 200}).encode())
    response = client.post(
        "/auth/sign-in",
        input_stream=body,
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413 and response.json["error"] == "AUTH_INVALID_REQUEST"


def test_with_no_body_limit_a_large_body_is_read(make_app: Any) -> None:
    app = make_app(LUCIA_MAX_BODY_SIZE=None)
    body = huge_json(identifier="ann@example.com", password=PASSWORD)
    response = app.test_client().post("/auth/sign-up", data=body, content_type="application/json")
    assert response.status_code == 201


# -- Cache-Control on the blueprint's answers --------------------------------------------


def test_every_error_answer_of_the_blueprint_is_no_store(app: Flask, client: FlaskClient) -> None:
    sign_up(client)
    evil = {"Origin": "https://evil.example"}
    responses = [
        client.post("/auth/sign-in", json={"identifier": "a@b.c", "password": "wrong one"}),
        client.post("/auth/sign-out", json={}, headers=evil),
        client.post("/auth/sessions/nope/revoke", json={}),
        client.post("/auth/sign-in", data={"identifier": "a@b.c", "password": "x" * 70_000}),
        client.post("/auth/confirm", data={}),
        client.post("/auth/sign-up", json={"identifier": "ann@example.com", "password": PASSWORD}),
        app.test_client().get("/auth/session"),
        app.test_client().get("/auth/devices", headers={"Accept": "application/json"}),
    ]
    assert [r.status_code for r in responses] == [400, 403, 404, 413, 400, 409, 401, 401]
    for response in responses:
        assert response.headers.get("Cache-Control") == "no-store", response.request.path


def test_a_closed_sign_up_page_is_no_store(make_app: Any) -> None:
    response = make_app(LUCIA_SIGN_UP=False).test_client().get("/auth/sign-up")
    assert response.status_code == 404 and response.headers["Cache-Control"] == "no-store"


def test_the_devices_page_is_no_store(client: FlaskClient) -> None:
    sign_up(client)
    response = client.get("/auth/devices")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up"])
def test_the_form_pages_are_no_store(client: FlaskClient, path: str) -> None:
    assert client.get(path).headers["Cache-Control"] == "no-store"
