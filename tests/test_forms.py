"""The HTML views: Flask-WTF sign-in and sign-up forms, templates, and lucia_script()."""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask, after_this_request, render_template_string, request
from flask.testing import FlaskClient
from flask_wtf.csrf import CSRFProtect

from flask_lucia import Lucia
from flask_lucia.testing import sign_in_client

from .conftest import ORIGIN, PASSWORD, cookie, sign_up


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def post_form(client: FlaskClient, path: str, **fields: Any) -> Any:
    token = csrf_token(client.get(path).text)
    return client.post(path, data={"csrf_token": token, **fields})


def page_data(html: str) -> Any:
    found = re.search(r'<script type="application/json" id="lucia-page-data">(.*?)</script>', html)
    assert found, "no page data"
    return json.loads(found.group(1))


# -- sign-in form ------------------------------------------------------------------


def test_the_sign_in_page_renders_a_form_with_a_csrf_token(client: FlaskClient) -> None:
    response = client.get("/auth/sign-in")
    assert response.status_code == 200
    assert 'name="identifier"' in response.text and 'name="password"' in response.text
    assert csrf_token(response.text)


def test_signing_in_with_the_form_redirects_to_next_with_cookies(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    token = csrf_token(client.get("/auth/sign-in?next=/private").text)
    response = client.post(
        "/auth/sign-in",
        data={
            "csrf_token": token,
            "identifier": "ann@example.com",
            "password": PASSWORD,
            "next": "/private",
        },
    )
    assert response.status_code == 303 and response.location == "/private"
    assert cookie(client, "lucia_access_token")


def test_the_sign_in_page_keeps_a_safe_next_and_drops_an_unsafe_one(client: FlaskClient) -> None:
    assert 'value="/private"' in client.get("/auth/sign-in?next=/private").text
    assert "evil" not in client.get("/auth/sign-in?next=https://evil.example/").text


def test_a_wrong_password_and_an_unknown_user_show_the_same_flashed_error(
    client: FlaskClient,
) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    wrong = post_form(client, "/auth/sign-in", identifier="ann@example.com", password="nope nope")
    unknown = post_form(client, "/auth/sign-in", identifier="x@example.com", password="nope nope")
    assert wrong.status_code == unknown.status_code == 400
    message = "Wrong email or password."
    assert message in wrong.text and message in unknown.text
    assert cookie(client, "lucia_access_token") is None


def test_a_form_post_without_the_csrf_token_signs_nobody_in(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    response = client.post(
        "/auth/sign-in", data={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert cookie(client, "lucia_access_token") is None


def test_a_form_post_with_an_unsafe_next_goes_home(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    response = post_form(
        client,
        "/auth/sign-in",
        identifier="ann@example.com",
        password=PASSWORD,
        next="//evil.example/",
    )
    assert response.status_code == 303 and response.location == "/"


def test_a_form_post_from_another_site_is_403(client: FlaskClient) -> None:
    token = csrf_token(client.get("/auth/sign-in").text)
    response = client.post(
        "/auth/sign-in",
        data={"csrf_token": token, "identifier": "a@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


# -- sign-up form ------------------------------------------------------------------


def test_the_sign_up_page_has_a_field_per_user_column(client: FlaskClient) -> None:
    page = client.get("/auth/sign-up").text
    assert 'name="username"' in page and 'name="age"' in page


def test_signing_up_with_the_form_creates_the_user_and_signs_in(
    app: Flask, client: FlaskClient
) -> None:
    response = post_form(
        client,
        "/auth/sign-up",
        identifier="ann@example.com",
        password=PASSWORD,
        username="ann",
        age="30",
    )
    assert response.status_code == 303
    assert client.get("/auth/session").json["user"]["username"] == "ann"
    assert client.get("/auth/session").json["user"]["age"] == 30


def test_signing_up_with_a_taken_identifier_shows_the_error(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    response = post_form(client, "/auth/sign-up", identifier="ann@example.com", password=PASSWORD)
    assert response.status_code == 400
    assert "already exists" in response.text


def test_signing_up_with_an_identifier_that_is_not_an_email_shows_the_error(
    client: FlaskClient,
) -> None:
    response = post_form(client, "/auth/sign-up", identifier="not-an-email", password="short")
    field_errors = re.findall(r'<div class="field-error">([^<]+)</div>', response.text)
    assert response.status_code == 400 and 'class="flash' not in response.text
    assert field_errors == [
        "Enter an email address, like name@example.com.",
        "Password must be at least 8 characters.",
    ]
    assert client.get("/auth/session").status_code == 401


def test_signing_up_with_a_short_password_shows_the_error(client: FlaskClient) -> None:
    response = post_form(client, "/auth/sign-up", identifier="a@example.com", password="short")
    assert response.status_code == 400 and "at least 8 characters" in response.text


def test_a_field_too_long_for_its_column_is_a_form_error(client: FlaskClient) -> None:
    response = post_form(
        client, "/auth/sign-up", identifier="a@example.com", password=PASSWORD, username="x" * 40
    )
    assert response.status_code == 400
    assert "Field cannot be longer than 32 characters." in response.text


# -- the identifier field and limits follow the config -----------------------------


def identifier_input(page: str) -> str:
    found = re.search(r'<input[^>]*name="identifier"[^>]*>', page)
    assert found, "no identifier input"
    return found.group(0)


def password_input(page: str) -> str:
    found = re.search(r'<input[^>]*name="password"[^>]*>', page)
    assert found, "no password input"
    return found.group(0)


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up"])
def test_the_email_provider_gets_an_email_input_labelled_email(
    client: FlaskClient, path: str
) -> None:
    page = client.get(path).text
    field = identifier_input(page)
    assert '<label for="identifier">Email</label>' in page
    assert 'type="email"' in field and 'autocomplete="username"' in field


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up"])
def test_a_username_provider_gets_a_text_input_labelled_username(make_app: Any, path: str) -> None:
    page = make_app(LUCIA_PASSWORD_PROVIDER="username").test_client().get(path).text
    field = identifier_input(page)
    assert '<label for="identifier">Username</label>' in page and ">Email<" not in page
    assert 'type="text"' in field and 'type="email"' not in field
    assert 'autocomplete="username"' in field and 'autocapitalize="none"' in field


def test_the_identifier_label_follows_lucia_identifier_label(make_app: Any) -> None:
    app = make_app(LUCIA_PASSWORD_PROVIDER="username", LUCIA_IDENTIFIER_LABEL="Login name")
    page = app.test_client().get("/auth/sign-in").text
    assert '<label for="identifier">Login name</label>' in page


def test_a_username_app_signs_up_and_in_through_its_forms(make_app: Any) -> None:
    app = make_app(LUCIA_PASSWORD_PROVIDER="username")
    client = app.test_client()
    up = post_form(client, "/auth/sign-up", identifier="ann", password=PASSWORD)
    client.post("/auth/sign-out", json={}, headers={"Origin": ORIGIN})
    back = post_form(client, "/auth/sign-in", identifier="ann", password=PASSWORD)
    assert up.status_code == back.status_code == 303
    with app.app_context():
        assert app.lucia.get_user_by_provider_id("username", "ann")  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up"])
def test_the_password_maxlength_is_lucia_password_max_length(
    client: FlaskClient, path: str
) -> None:
    assert 'maxlength="256"' in password_input(client.get(path).text)


def test_the_password_maxlength_follows_a_configured_max(make_app: Any) -> None:
    app = make_app(LUCIA_PASSWORD_MAX_LENGTH=64)
    client = app.test_client()
    for path in ("/auth/sign-in", "/auth/sign-up"):
        assert 'maxlength="64"' in password_input(client.get(path).text)
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com", password=PASSWORD)  # type: ignore[attr-defined]
    sign_in_client(client, user, fresh=False)
    assert 'maxlength="64"' in password_input(client.get("/auth/confirm").text)


def test_the_identifier_maxlength_follows_lucia_identifier_max_length(make_app: Any) -> None:
    page = make_app(LUCIA_IDENTIFIER_MAX_LENGTH=80).test_client().get("/auth/sign-in").text
    assert 'maxlength="80"' in identifier_input(page)


def test_a_password_over_the_max_is_a_form_error(make_app: Any) -> None:
    client = make_app(LUCIA_PASSWORD_MAX_LENGTH=64).test_client()
    response = post_form(client, "/auth/sign-in", identifier="a@example.com", password="p" * 65)
    assert response.status_code == 400
    assert "Field cannot be longer than 64 characters." in response.text


# -- configuration and overrides ---------------------------------------------------


def test_register_views_off_leaves_only_the_json_endpoints(make_app: Any) -> None:
    app = make_app(LUCIA_REGISTER_VIEWS=False)
    client = app.test_client()
    assert client.get("/auth/sign-in").status_code == 404
    assert client.get("/auth/sign-up").status_code == 404
    response = client.post("/auth/sign-up", json={"identifier": "a@b.c", "password": PASSWORD})
    assert response.status_code == 201


def test_the_app_can_override_a_template(app: Flask, client: FlaskClient) -> None:
    app.jinja_loader = jinja2.DictLoader(
        {"lucia/sign_in.html": "<p>Our own sign-in</p>{{ form.identifier() }}"}
    )
    page = client.get("/auth/sign-in").text
    assert page.startswith("<p>Our own sign-in</p>") and 'name="identifier"' in page


def test_the_sign_out_button_posts_to_sign_out(app: Flask) -> None:
    with app.test_request_context("/"):
        html = render_template_string('{% include "lucia/sign_out_form.html" %}')
    assert 'action="/auth/sign-out"' in html and 'name="redirect" value=""' in html


# -- CSRFProtect -------------------------------------------------------------------


@pytest.fixture
def protected(make_app: Any) -> FlaskClient:
    app = make_app()
    CSRFProtect(app)

    @app.get("/page")
    def page() -> str:
        return render_template_string("{{ lucia_script() }}")

    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def test_forms_work_with_csrfprotect_on(protected: FlaskClient) -> None:
    response = post_form(protected, "/auth/sign-up", identifier="a@example.com", password=PASSWORD)
    assert response.status_code == 303
    assert protected.get("/auth/session").status_code == 200


def test_json_posts_with_the_page_token_pass_csrfprotect(protected: FlaskClient) -> None:
    token = page_data(protected.get("/page").text)["csrfToken"]
    response = protected.post(
        "/auth/sign-up",
        json={"identifier": "a@example.com", "password": PASSWORD},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201


def test_json_posts_without_a_token_are_refused_by_csrfprotect(protected: FlaskClient) -> None:
    response = protected.post(
        "/auth/sign-up", json={"identifier": "a@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400


def test_an_oversized_form_is_refused_before_csrfprotect_parses_it(protected: FlaskClient) -> None:
    response = protected.post(
        "/auth/sign-in", data={"identifier": "a@example.com", "password": "x" * 1_000_000}
    )
    assert response.status_code == 413 and response.json["error"] == "AUTH_INVALID_REQUEST"


# -- lucia_script() ----------------------------------------------------------------


@pytest.fixture
def scripted(app: Flask) -> Flask:
    @app.get("/page")
    def page() -> str:
        return render_template_string("<body>{{ lucia_script() }}</body>")

    return app


def test_lucia_script_loads_the_module_with_no_session(scripted: Flask) -> None:
    html = scripted.test_client().get("/page").text
    assert '<script type="module" src="/auth/lucia.js"></script>' in html
    assert page_data(html) == {"user": None, "session": None, "csrfToken": None}


def test_lucia_script_carries_the_session_but_never_a_token(
    scripted: Flask, client: FlaskClient
) -> None:
    body = sign_up(client, username="ann")
    html = client.get("/page").text
    assert page_data(html) == {**body, "csrfToken": None}
    assert cookie(client, "lucia_access_token") not in html
    assert cookie(client, "lucia_refresh_token") not in html


def test_lucia_script_escapes_user_data(scripted: Flask, client: FlaskClient) -> None:
    sign_up(client, username="</script><b>x")
    html = client.get("/page").text
    assert "</script><b>" not in html
    assert page_data(html)["user"]["username"] == "</script><b>x"


def test_the_sign_in_page_opens_from_a_link_on_another_site(app: Flask) -> None:
    response = app.test_client().get(
        "/auth/sign-in?next=/private", headers={"Referer": "https://search.example/?q=app"}
    )
    assert response.status_code == 200


def test_the_sign_up_form_offers_only_the_sign_up_columns(make_app: Any) -> None:
    app = make_app(LUCIA_SIGN_UP_COLUMNS=["username"])
    page = app.test_client().get("/auth/sign-up").text
    assert 'name="username"' in page and 'name="age"' not in page


def test_a_user_column_labels_its_sign_up_field_with_its_info_label(make_app: Any) -> None:
    column = sa.Column("display_name", sa.String(40), info={"label": "Name shown to others"})
    app = make_app(Lucia(user_columns=[column]), LUCIA_SIGN_UP_COLUMNS=["display_name"])

    page = app.test_client().get("/auth/sign-up").text

    assert '<label for="display_name">Name shown to others</label>' in page


def test_a_lazy_column_label_is_read_for_each_page(make_app: Any) -> None:
    flask_babel = pytest.importorskip("flask_babel")
    words = {"fr": "Nom affiché", "en": "Display name"}
    label = flask_babel.LazyString(lambda: words[request.args.get("lang", "en")])
    column = sa.Column("display_name", sa.String(40), info={"label": label})
    app = make_app(Lucia(user_columns=[column]), LUCIA_SIGN_UP_COLUMNS=["display_name"])
    client = app.test_client()

    french, english = client.get("/auth/sign-up?lang=fr").text, client.get("/auth/sign-up").text

    assert '<label for="display_name">Nom affiché</label>' in french
    assert '<label for="display_name">Display name</label>' in english


def test_a_user_column_without_a_label_is_labelled_from_its_name(make_app: Any) -> None:
    column = sa.Column("display_name", sa.String(40))
    app = make_app(Lucia(user_columns=[column]), LUCIA_SIGN_UP_COLUMNS=["display_name"])

    page = app.test_client().get("/auth/sign-up").text

    assert '<label for="display_name">Display name</label>' in page


def test_form_fields_render_no_empty_attributes(client: FlaskClient) -> None:
    page = client.get("/auth/sign-up").text
    assert 'autocomplete="None"' not in page and 'type="None"' not in page
    assert 'autocomplete="new-password"' in page


# -- LUCIA_SIGN_UP = False ---------------------------------------------------------------


def test_closed_sign_up_has_no_form_page(make_app: Any) -> None:
    client = make_app(LUCIA_SIGN_UP=False).test_client()
    assert client.get("/auth/sign-up").status_code == 404


def test_closed_sign_up_refuses_the_form_post_and_creates_no_user(make_app: Any) -> None:
    app = make_app(LUCIA_SIGN_UP=False)
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    token = csrf_token(client.get("/auth/sign-in").text)
    fields = {"csrf_token": token, "identifier": "ann@example.com", "password": PASSWORD}
    assert client.post("/auth/sign-up", data=fields).status_code == 404
    assert client.post("/auth/sign-in", json=fields).status_code == 400  # no such user


def test_the_sign_in_page_links_to_sign_up_only_while_it_is_open(make_app: Any) -> None:
    assert 'href="/auth/sign-up' in make_app().test_client().get("/auth/sign-in").text
    closed = make_app(LUCIA_SIGN_UP=False).test_client().get("/auth/sign-in").text
    assert 'href="/auth/sign-up' not in closed and "Create an account" not in closed


# -- framing ----------------------------------------------------------------------------


def framing(response: Any) -> tuple[str | None, list[str]]:
    headers = response.headers
    return headers.get("X-Frame-Options"), headers.getlist("Content-Security-Policy")


def test_every_html_page_of_the_blueprint_refuses_framing(make_app: Any) -> None:
    client = make_app().test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    pages = [client.get("/auth/sign-in"), client.get("/auth/sign-up")]
    pages.append(post_form(client, "/auth/sign-in", identifier="a@b.c", password="wrong one"))
    sign_up(client)
    pages += [client.get("/auth/devices"), client.get("/auth/confirm")]
    closed = make_app(LUCIA_SIGN_UP=False).test_client()
    pages.append(closed.get("/auth/sign-up", headers={"Accept": "text/html"}))
    assert [page.status_code for page in pages] == [200, 200, 400, 200, 200, 404]
    for page in pages:
        assert page.mimetype == "text/html"
        assert framing(page) == ("DENY", ["frame-ancestors 'none'"]), page.request.path


def test_an_apps_own_policy_is_kept_and_framing_is_refused_beside_it(app: Flask) -> None:
    @app.before_request
    def policy() -> None:
        @after_this_request
        def add(response: Any) -> Any:
            response.headers["Content-Security-Policy"] = "default-src 'self'"
            return response

    page = app.test_client().get("/auth/sign-in")
    assert framing(page) == ("DENY", ["default-src 'self'", "frame-ancestors 'none'"])


def test_an_apps_own_frame_ancestors_and_frame_options_are_left_alone(app: Flask) -> None:
    @app.before_request
    def policy() -> None:
        @after_this_request
        def add(response: Any) -> Any:
            response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
            return response

    page = app.test_client().get("/auth/sign-in")
    assert framing(page) == ("SAMEORIGIN", ["frame-ancestors 'self'"])


def test_json_answers_carry_no_framing_headers(client: FlaskClient) -> None:
    assert framing(client.get("/auth/session")) == (None, [])
