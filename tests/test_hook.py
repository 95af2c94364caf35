"""The request hook: cookie or bearer token to ``current_user``, refresh, CSRF, outages."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf

from flask_lucia import (
    AnonymousUser,
    Lucia,
    LuciaError,
    current_session,
    current_user,
    login_required,
)

from .conftest import ORIGIN, PASSWORD, Clock, cookie, sign_up

ACCESS, REFRESH = "lucia_access_token", "lucia_refresh_token"


def cleared(response: Any) -> bool:
    """True when the response deletes both auth cookies."""
    values = response.headers.getlist("Set-Cookie")
    return any(v.startswith(f"{ACCESS}=;") for v in values) and any(
        v.startswith(f"{REFRESH}=;") for v in values
    )


# -- no cookies --------------------------------------------------------------------


def test_a_request_without_cookies_runs_no_query(client: FlaskClient, queries: list[str]) -> None:
    assert client.get("/private", headers={"Accept": "application/json"}).status_code == 401
    assert queries == []


def test_a_request_without_cookies_is_anonymous_and_falsy(app: Flask) -> None:
    with app.test_request_context("/"):
        app.preprocess_request()
        assert isinstance(current_user._get_current_object(), AnonymousUser)  # type: ignore[attr-defined]
        assert not current_user and not current_user.is_authenticated
        assert current_session._get_current_object() is None  # type: ignore[attr-defined]


# -- a valid access token ------------------------------------------------------------


def test_a_valid_access_cookie_signs_the_request_in(client: FlaskClient) -> None:
    body = sign_up(client, username="ann")
    assert client.get("/private").json == {"user_id": body["user"]["user_id"], "username": "ann"}


def test_validating_a_request_is_one_query(client: FlaskClient, queries: list[str]) -> None:
    sign_up(client)
    queries.clear()
    client.get("/private")
    assert len(queries) == 1


def test_validating_a_request_sends_sqlite_one_statement_and_no_transaction(
    make_app: Any, tmp_path: Any
) -> None:
    app = make_app(LUCIA_DATABASE_URL=f"sqlite:///{tmp_path / 'trace.sqlite3'}")
    app.add_url_rule("/private", "private", login_required(lambda: "private"))
    client = app.test_client()
    sign_up(client)
    engine = app.extensions["lucia"].storage.engine
    engine.dispose()  # new connections, each traced from its first statement
    sent: list[str] = []
    sa.event.listen(engine, "connect", lambda conn, _: conn.set_trace_callback(sent.append))
    client.get("/private")  # opens the connection: its pragmas are not the request's
    sent.clear()
    assert client.get("/private").status_code == 200
    assert len(sent) == 1 and sent[0].lstrip().startswith("SELECT")


def test_the_request_path_returns_connections_to_the_pool_as_it_found_them(
    app: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    engine = app.extensions["lucia"].storage.engine
    with engine.connect() as conn:
        before = conn.get_isolation_level()
    assert client.get("/private").status_code == 200
    with engine.connect() as conn:
        assert conn.get_isolation_level() == before
        assert not conn.in_transaction()


def test_a_failing_request_query_answers_503_and_the_next_one_works(
    app: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    with app.app_context():
        client.get("/private")
        query = app.extensions["lucia"].storage._validate_query
    good = query.sql
    query.sql = "SELECT no_such_column FROM no_such_table"
    try:
        response = client.get("/private")
        assert response.status_code == 503
        assert response.json["error"] == "DATABASE_FETCH_FAILED"
    finally:
        query.sql = good
    assert client.get("/private").status_code == 200


def test_user_columns_come_back_as_their_python_types(make_app: Any) -> None:
    columns = [
        sa.Column("admin", sa.Boolean, nullable=False, default=False),
        sa.Column("score", sa.Float, nullable=True),
    ]
    app = make_app(lucia=Lucia(user_columns=columns), LUCIA_SIGN_UP_COLUMNS=["admin", "score"])
    app.add_url_rule(
        "/me",
        "me",
        login_required(lambda: {"admin": current_user.admin, "score": current_user.score}),
    )
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client, admin=True, score=2.5)
    assert client.get("/me").json == {"admin": True, "score": 2.5}
    with app.app_context():
        assert app.extensions["lucia"].storage.validate("0" * 64) is None


def test_a_response_that_already_varies_keeps_its_vary_and_adds_cookie(
    app: Flask, client: FlaskClient
) -> None:
    @app.get("/negotiated")
    @login_required
    def negotiated() -> Any:
        return "ok", {"Vary": "Accept-Encoding"}

    sign_up(client)
    assert client.get("/negotiated").headers["Vary"] == "Accept-Encoding, Cookie"


def test_current_user_and_current_session_are_in_templates(app: Flask, client: FlaskClient) -> None:
    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% if current_user %}{{ current_user.username }} {{ current_session.user_id }}"
            "{% else %}anon{% endif %}"
        )

    assert client.get("/page").text == "anon"
    body = sign_up(client, username="ann")
    assert client.get("/page").text == f"ann {body['user']['user_id']}"


def test_an_app_before_request_already_sees_current_user(
    make_app: Any, client: FlaskClient
) -> None:
    app = make_app()
    seen: list[bool] = []
    app.before_request(lambda: seen.append(bool(current_user)) and None)
    browser = app.test_client()
    browser.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(browser)
    browser.get("/auth/session")
    assert seen[-1] is True


def test_a_response_that_depends_on_the_session_varies_on_cookie(client: FlaskClient) -> None:
    sign_up(client)
    assert "Cookie" in client.get("/private").headers["Vary"]


# -- refresh through the hook --------------------------------------------------------


def test_an_expired_access_token_with_a_valid_refresh_token_rotates_both(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    old_access, old_refresh = cookie(client, ACCESS), cookie(client, REFRESH)
    clock.advance(16 * 60)
    response = client.get("/private")
    assert response.status_code == 200
    assert len(response.headers.getlist("Set-Cookie")) == 2
    assert cookie(client, ACCESS) not in (None, old_access)
    assert cookie(client, REFRESH) not in (None, old_refresh)


def test_a_missing_access_token_with_a_valid_refresh_token_rotates(client: FlaskClient) -> None:
    sign_up(client)
    client.delete_cookie(ACCESS)
    assert client.get("/private").status_code == 200
    assert cookie(client, ACCESS) is not None


def test_a_rotation_in_the_hook_is_reused_by_the_refresh_endpoint(
    client: FlaskClient, clock: Clock, queries: list[str]
) -> None:
    sign_up(client)
    clock.advance(16 * 60)
    response = client.post("/auth/refresh")
    assert response.status_code == 200
    assert len(response.headers.getlist("Set-Cookie")) == 2
    assert client.get("/private").status_code == 200


# -- invalid tokens ------------------------------------------------------------------


def test_invalid_tokens_clear_the_cookies_and_the_request_is_anonymous(
    client: FlaskClient,
) -> None:
    client.set_cookie(ACCESS, "A" * 32)
    client.set_cookie(REFRESH, "B" * 32)
    response = client.get("/private", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert cleared(response)
    assert cookie(client, ACCESS) is None and cookie(client, REFRESH) is None


@pytest.mark.parametrize(
    "value",
    ["", "x", "A" * 33, "A" * 4000, "é" * 32, "\x00" * 32, "' OR 1=1 --", "%ff%fe" * 8, "a b"],
)
def test_garbage_cookies_are_anonymous_never_an_error(client: FlaskClient, value: str) -> None:
    client.set_cookie(ACCESS, value)
    client.set_cookie(REFRESH, value)
    assert client.get("/private", headers={"Accept": "application/json"}).status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer x", "Bearer " + "é" * 32, "Basic abc", "bearer " * 50]
)
def test_garbage_bearer_tokens_are_anonymous(client: FlaskClient, header: str) -> None:
    response = client.get(
        "/private", headers={"Authorization": header, "Accept": "application/json"}
    )
    assert response.status_code == 401


# -- bearer tokens -------------------------------------------------------------------


def test_a_bearer_token_authenticates_an_api_client(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "api@example.com", user_data={"username": "api"})
        _, tokens = app.lucia.create_session(user.user_id)
    api = app.test_client()
    response = api.get("/private", headers={"Authorization": f"Bearer {tokens.access_token}"})
    assert response.json == {"user_id": user.user_id, "username": "api"}


def test_a_bearer_post_needs_no_origin(app: Flask) -> None:
    @app.post("/api/things")
    @login_required
    def things() -> dict[str, bool]:
        return {"created": True}

    with app.app_context():
        user = app.lucia.create_user("email", "api@example.com")
        _, tokens = app.lucia.create_session(user.user_id)
    response = app.test_client().post(
        "/api/things", headers={"Authorization": f"Bearer {tokens.access_token}"}
    )
    assert response.json == {"created": True}


# -- CSRF (Origin / Referer) ---------------------------------------------------------


@pytest.fixture
def post_app(app: Flask) -> Flask:
    @app.post("/action")
    @login_required
    def action() -> dict[str, bool]:
        return {"done": True}

    return app


def signed_in_browser(app: Flask) -> FlaskClient:
    browser = app.test_client()
    browser.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(browser)
    del browser.environ_base["HTTP_ORIGIN"]
    return browser


def test_a_same_origin_post_with_cookies_passes(post_app: Flask) -> None:
    browser = signed_in_browser(post_app)
    assert browser.post("/action", headers={"Origin": ORIGIN}).json == {"done": True}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8080"},
        {"Origin": "https://localhost"},
        {"Origin": "null"},
        {},
        {"Referer": "https://evil.example/page"},
    ],
    ids=["other-site", "other-port", "other-scheme", "null", "no-header", "other-referer"],
)
def test_a_cross_site_post_with_cookies_is_refused(
    post_app: Flask, headers: dict[str, str]
) -> None:
    browser = signed_in_browser(post_app)
    response = browser.post("/action", headers=headers)
    assert response.status_code == 403
    assert response.json["error"] == "AUTH_INVALID_REQUEST"


def test_the_referer_is_used_when_origin_is_absent(post_app: Flask) -> None:
    browser = signed_in_browser(post_app)
    assert browser.post("/action", headers={"Referer": f"{ORIGIN}/form"}).status_code == 200


def test_a_trusted_origin_passes(make_app: Any) -> None:
    app = make_app(LUCIA_TRUSTED_ORIGINS=["https://app.example/"])

    @app.post("/action")
    def action() -> str:
        return "ok"

    browser = signed_in_browser(app)
    assert browser.post("/action", headers={"Origin": "https://APP.example"}).status_code == 200


def test_csrf_protection_can_be_switched_off(make_app: Any) -> None:
    app = make_app(LUCIA_CSRF_PROTECTION=False)

    @app.post("/action")
    @login_required
    def action() -> str:
        return "ok"

    browser = signed_in_browser(app)
    assert browser.post("/action", headers={"Origin": "https://evil.example"}).text == "ok"


def test_safe_methods_need_no_origin(post_app: Flask) -> None:
    browser = signed_in_browser(post_app)
    assert browser.get("/private", headers={"Origin": "https://evil.example"}).status_code == 200


# -- database outage ---------------------------------------------------------------


def test_a_database_outage_answers_503_and_keeps_the_cookies(
    app: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    storage = app.extensions["lucia"].storage
    working = storage._read_engine
    storage._read_engine = sa.create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    try:
        response = client.get("/private")
        assert response.status_code == 503
        assert response.json["error"] == "DATABASE_FETCH_FAILED"
        assert response.headers.getlist("Set-Cookie") == []
    finally:
        storage._read_engine = working
    assert client.get("/private").status_code == 200


# -- login_required and fresh_login_required ---------------------------------------


def test_login_required_answers_json_requests_with_401(client: FlaskClient) -> None:
    response = client.get("/private", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json == {"error": "AUTH_NOT_AUTHENTICATED", "message": "Sign in to continue."}


def test_login_required_without_a_login_view_answers_401_json(make_app: Any) -> None:
    app = make_app(LUCIA_REGISTER_VIEWS=False)

    @app.get("/reports")
    @login_required
    def reports() -> str:
        return "reports"

    assert app.config["LUCIA_LOGIN_VIEW"] is None
    assert app.test_client().get("/reports", headers={"Accept": "text/html"}).status_code == 401


def test_login_required_redirects_to_the_sign_in_form_by_default(client: FlaskClient) -> None:
    response = client.get("/private", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.location == "/auth/sign-in?next=/private"


def test_login_required_redirects_html_to_the_login_view_with_next(make_app: Any) -> None:
    app = make_app(LUCIA_LOGIN_VIEW="login")
    app.add_url_rule("/login", "login", lambda: "login page")

    @app.get("/reports")
    @login_required
    def reports() -> str:
        return "reports"

    response = app.test_client().get("/reports?year=2026", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.location == "/login?next=/reports?year%3D2026"


def test_login_required_lets_options_through(client: FlaskClient) -> None:
    assert client.options("/private").status_code == 200


def test_login_required_supports_async_views(app: Flask, client: FlaskClient) -> None:
    @app.get("/async")
    @login_required
    async def async_view() -> dict[str, str]:
        return {"user": current_user.user_id}

    body = sign_up(client)
    assert client.get("/async").json == {"user": body["user"]["user_id"]}


def test_fresh_login_required_passes_a_fresh_session(client: FlaskClient) -> None:
    sign_up(client)
    assert client.get("/fresh").json == {"ok": True}


def test_fresh_login_required_refuses_a_stale_session_with_fresh_required(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    clock.advance(11 * 60)
    response = client.get("/fresh", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json["error"] == "AUTH_NOT_AUTHENTICATED"
    assert response.json["fresh_required"] is True


def test_fresh_login_required_refuses_an_anonymous_request(client: FlaskClient) -> None:
    response = client.get("/fresh", headers={"Accept": "application/json"})
    assert response.status_code == 401 and "fresh_required" not in response.json


# -- sign_in, sign_out, parse_request, validate_request -----------------------------


def test_sign_in_always_makes_a_new_session(app: Flask, client: FlaskClient) -> None:
    sign_up(client)
    old_access = cookie(client, ACCESS)
    client.post("/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD})
    assert cookie(client, ACCESS) != old_access
    with app.app_context(), pytest.raises(LuciaError):
        app.lucia.validate_access_token(old_access)


def test_sign_in_rotates_the_flask_wtf_csrf_token(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "a@example.com")
    with app.test_request_context("/"):
        app.preprocess_request()
        before = generate_csrf()
        app.lucia.sign_in(user)
        assert generate_csrf() != before


def test_sign_in_accepts_a_user_id(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "a@example.com")
    with app.test_request_context("/"):
        app.preprocess_request()
        session = app.lucia.sign_in(user.user_id)
        assert current_user.user_id == user.user_id and session.fresh


def test_sign_out_ends_the_session_server_side(app: Flask, client: FlaskClient) -> None:
    @app.post("/leave")
    def leave() -> str:
        app.lucia.sign_out()
        return "bye"

    sign_up(client)
    access = cookie(client, ACCESS)
    assert cleared(client.post("/leave"))
    with app.app_context(), pytest.raises(LuciaError):
        app.lucia.validate_access_token(access)


def test_parse_request_returns_the_cookie_tokens(app: Flask, client: FlaskClient) -> None:
    sign_up(client)
    access, refresh = cookie(client, ACCESS), cookie(client, REFRESH)
    with app.test_request_context(
        "/", headers={"Cookie": f"{ACCESS}={access}; {REFRESH}={refresh}"}
    ):
        assert app.lucia.parse_request() == (access, refresh)


def test_parse_request_returns_empty_strings_without_tokens(app: Flask) -> None:
    with app.test_request_context("/"):
        assert app.lucia.parse_request() == ("", "")


def test_parse_request_refuses_a_cross_site_post(app: Flask) -> None:
    with (
        app.test_request_context(
            "/",
            method="POST",
            headers={"Cookie": f"{ACCESS}=x", "Origin": "https://evil.example"},
        ),
        pytest.raises(LuciaError) as excinfo,
    ):
        app.lucia.parse_request()
    assert excinfo.value.code == "AUTH_INVALID_REQUEST"


def test_validate_request_returns_the_session_of_the_request(
    app: Flask, client: FlaskClient
) -> None:
    @app.get("/who")
    def who() -> dict[str, str]:
        return {"session": app.lucia.validate_request().session_id}

    user_id = sign_up(client)["user"]["user_id"]
    with app.app_context():
        (session,) = app.lucia.get_user_sessions(user_id)
    assert client.get("/who").json == {"session": session.session_id}


def test_validate_request_without_a_session_raises_invalid_access_token(app: Flask) -> None:
    with app.test_request_context("/"):
        app.preprocess_request()
        with pytest.raises(LuciaError) as excinfo:
            app.lucia.validate_request()
    assert excinfo.value.code == "AUTH_INVALID_ACCESS_TOKEN"


def test_parse_request_accepts_only_the_current_request(app: Flask) -> None:
    from werkzeug.test import EnvironBuilder

    other = Flask.request_class(EnvironBuilder("/").get_environ())
    with app.test_request_context("/"), pytest.raises(TypeError, match="current request"):
        app.lucia.parse_request(other)


def test_delete_all_cookies_adds_headers_that_clear_both(app: Flask) -> None:
    with app.test_request_context("/"):
        response = app.make_response("x")
        app.lucia.delete_all_cookies(response)
        assert cleared(response)


# -- responses that set cookies are never cached -------------------------------------


def test_lucia_js_with_rotated_cookies_is_private_no_store(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    clock.advance(16 * 60)  # the access token has expired: this request rotates
    response = client.get("/auth/lucia.js")
    names = {value.split("=", 1)[0] for value in response.headers.getlist("Set-Cookie")}
    assert names == {ACCESS, REFRESH}
    assert response.headers["Cache-Control"] == "private, no-store"


def test_lucia_js_without_a_cookie_change_stays_cacheable(client: FlaskClient) -> None:
    sign_up(client)
    response = client.get("/auth/lucia.js")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "public, max-age=3600"


def test_an_app_page_that_rotates_cookies_loses_its_public_caching(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    @app.get("/cached")
    def cached() -> Any:
        return "ok", {"Cache-Control": "public, max-age=600"}

    sign_up(client)
    assert client.get("/cached").headers["Cache-Control"] == "public, max-age=600"
    clock.advance(16 * 60)
    response = client.get("/cached")
    assert len(response.headers.getlist("Set-Cookie")) == 2
    assert response.headers["Cache-Control"] == "private, no-store"


def test_an_answer_that_clears_the_cookies_is_private_no_store(app: Flask) -> None:
    @app.get("/page")
    def page() -> str:
        return "ok"

    client = app.test_client()
    client.set_cookie(ACCESS, "A" * 43)
    response = client.get("/page")
    assert cleared(response)
    assert response.headers["Cache-Control"] == "private, no-store"


def test_sign_in_and_sign_out_answers_are_private_no_store(client: FlaskClient) -> None:
    signed_up = client.post("/auth/sign-up", json={"identifier": "a@b.c", "password": PASSWORD})
    signed_out = client.post("/auth/sign-out", json={})
    for response in (signed_up, signed_out):
        assert response.headers.getlist("Set-Cookie")
        assert response.headers["Cache-Control"] == "private, no-store"


# -- __Host- cookies ----------------------------------------------------------------------

HOST_ACCESS, HOST_REFRESH = "__Host-" + ACCESS, "__Host-" + REFRESH


@pytest.fixture
def host_app(make_app: Any) -> Flask:
    app: Flask = make_app(LUCIA_COOKIE_HOST_PREFIX=True)
    app.add_url_rule("/me", "me", login_required(lambda: {"user_id": current_user.user_id}))
    return app


def host_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def test_with_the_host_prefix_sign_in_sets_host_cookies_and_the_hook_reads_them(
    host_app: Flask,
) -> None:
    client = host_client(host_app)
    response = client.post("/auth/sign-up", json={"identifier": "a@b.c", "password": PASSWORD})
    names = {value.split("=", 1)[0] for value in response.headers.getlist("Set-Cookie")}
    assert names == {HOST_ACCESS, HOST_REFRESH, "__Host-lucia_device"}
    assert all("; Secure" in v for v in response.headers.getlist("Set-Cookie"))
    assert client.get("/me").json == {"user_id": response.json["user"]["user_id"]}


def test_with_the_host_prefix_the_refresh_cookie_rotates_under_its_host_name(
    host_app: Flask, clock: Clock
) -> None:
    client = host_client(host_app)
    sign_up(client)
    old = cookie(client, HOST_REFRESH)
    clock.advance(16 * 60)
    assert client.get("/me").status_code == 200
    assert cookie(client, HOST_REFRESH) not in (None, old)


def test_with_the_host_prefix_a_tossed_unprefixed_cookie_is_ignored(host_app: Flask) -> None:
    with host_app.app_context():
        user = host_app.lucia.create_user("email", "eve@example.com", password=PASSWORD)  # type: ignore[attr-defined]
        _, tokens = host_app.lucia.create_session(user.user_id)  # type: ignore[attr-defined]
    client = host_client(host_app)
    client.set_cookie(ACCESS, tokens.access_token)  # set by a sibling subdomain, say
    assert client.get("/me", headers={"Accept": "application/json"}).status_code == 401


def test_init_app_refuses_host_cookies_with_a_cookie_domain(make_app: Any) -> None:
    with pytest.raises(ValueError, match="LUCIA_COOKIE_DOMAIN is set"):
        make_app(LUCIA_COOKIE_HOST_PREFIX=True, LUCIA_COOKIE_DOMAIN="example.com")
