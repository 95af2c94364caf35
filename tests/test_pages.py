"""Pages people see (DESIGN §16): words, expired forms, error pages, devices, sign-out target."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import CSRFProtect

from flask_lucia import LuciaError
from flask_lucia.messages import ago, wait_text
from flask_lucia.web.agents import device_name

from .conftest import ORIGIN, PASSWORD, sign_up
from .test_forms import csrf_token, post_form

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
EVIL = {"Origin": "https://evil.example"}


def alert(page: str) -> str:
    """The text of the page's role=alert messages."""
    found = re.findall(r'role="alert">([^<]*)<', page)
    return " ".join(html.unescape(text) for text in found)


def field_value(page: str, name: str) -> str | None:
    """The value an input of the page carries, or None without one."""
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert tag, f"no input {name}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return None if value is None else html.unescape(value.group(1))


def browser(app: Flask) -> FlaskClient:
    """A test client that asks for HTML from this site, as a browser's form post does."""
    client = app.test_client()
    client.environ_base.update(HTTP_ORIGIN=ORIGIN, HTTP_ACCEPT=BROWSER["Accept"])
    return client


# -- messages in the user's words ------------------------------------------------------


def test_a_taken_email_is_named_in_the_form(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    page = post_form(client, "/auth/sign-up", identifier="ann@example.com", password=PASSWORD)
    assert page.status_code == 400
    assert alert(page.text) == "An account with this email already exists."


def test_a_taken_email_is_named_in_the_json_body(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post(
        "/auth/sign-up", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json == {
        "error": "AUTH_DUPLICATE_PROVIDER_ID",
        "message": "An account with this email already exists.",
    }


def test_a_taken_username_is_named_in_the_form_and_the_json_body(client: FlaskClient) -> None:
    sign_up(client, "a@example.com", username="ann")
    client.post("/auth/sign-out", json={})
    page = post_form(
        client, "/auth/sign-up", identifier="b@example.com", password=PASSWORD, username="ann"
    )
    response = client.post(
        "/auth/sign-up",
        json={"identifier": "c@example.com", "password": PASSWORD, "username": "ann"},
    )
    assert alert(page.text) == "This username is taken."
    assert (response.status_code, response.json["error"]) == (409, "AUTH_DUPLICATE_USER_DATA")
    assert response.json["message"] == "This username is taken."


def test_a_wrong_password_says_wrong_email_or_password_in_json(client: FlaskClient) -> None:
    sign_up(client)
    response = client.post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": "not it at all"}
    )
    assert response.status_code == 400
    assert response.json == {
        "error": "AUTH_INVALID_PASSWORD",
        "message": "Wrong email or password.",
    }


def test_the_identifier_label_comes_from_the_config(make_app: Any) -> None:
    client = make_app(LUCIA_IDENTIFIER_LABEL="Email address").test_client()
    response = client.post("/auth/sign-in", json={"identifier": "a@b.c", "password": "nope nope"})
    assert response.json["message"] == "Wrong email address or password."


def test_another_password_provider_is_named_by_its_name(make_app: Any) -> None:
    client = make_app(LUCIA_PASSWORD_PROVIDER="username").test_client()
    response = client.post("/auth/sign-in", json={"identifier": "ann", "password": "nope nope"})
    assert response.json["message"] == "Wrong username or password."


def test_a_wrong_password_on_the_confirm_page_says_wrong_password(client: FlaskClient) -> None:
    sign_up(client)
    page = post_form(client, "/auth/confirm", password="not it at all")
    assert page.status_code == 400 and alert(page.text) == "Wrong password."


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (119, "119 seconds"),
        (120, "2 minutes"),
        (230, "4 minutes"),
        (240, "4 minutes"),
        (3600, "60 minutes"),
        (7200, "2 hours"),
        (7201, "3 hours"),
    ],
)
def test_a_wait_is_said_in_the_largest_unit_that_fits(seconds: int, words: str) -> None:
    assert wait_text(seconds) == words


def throttled_app(make_app: Any) -> Flask:
    """Two failures lock an identifier until its 4-minute window ends."""
    return make_app(LUCIA_THROTTLE_MAX_FAILURES=2, LUCIA_THROTTLE_WINDOW=240)


def test_a_throttled_form_says_when_to_try_again_from_retry_after(make_app: Any) -> None:
    client = browser(throttled_app(make_app))
    for _ in range(2):
        post_form(client, "/auth/sign-in", identifier="ann@example.com", password="nope nope")
    page = post_form(client, "/auth/sign-in", identifier="ann@example.com", password="nope nope")
    assert page.status_code == 429 and page.headers["Retry-After"] in {"239", "240"}
    assert alert(page.text) == "Too many attempts. Try again in 4 minutes."


def test_a_throttled_json_answer_carries_retry_after_in_the_body(make_app: Any) -> None:
    client = throttled_app(make_app).test_client()
    body = {"identifier": "ann@example.com", "password": "nope nope"}
    for _ in range(2):
        client.post("/auth/sign-in", json=body)
    response = client.post("/auth/sign-in", json=body)
    assert response.status_code == 429
    assert response.json["retry_after"] == int(response.headers["Retry-After"])
    assert response.json["message"] == "Too many attempts. Try again in 4 minutes."


# -- an expired CSRF token ---------------------------------------------------------------


def drop_flask_session(client: FlaskClient) -> None:
    """What an hour, or a browser that lost the Flask session cookie, does to a form."""
    client.delete_cookie("session")


def test_an_expired_form_says_so_and_keeps_what_was_typed(client: FlaskClient) -> None:
    token = csrf_token(client.get("/auth/sign-in").text)
    drop_flask_session(client)
    page = client.post(
        "/auth/sign-in",
        data={"csrf_token": token, "identifier": "ann@example.com", "password": PASSWORD},
    )
    assert page.status_code == 400
    assert alert(page.text) == "This form expired before it was sent. Check it and send it again."
    assert field_value(page.text, "identifier") == "ann@example.com"
    assert not field_value(page.text, "password")


def test_the_expired_form_carries_a_fresh_token_that_signs_in(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    token = csrf_token(client.get("/auth/sign-in").text)
    drop_flask_session(client)
    fields = {"identifier": "ann@example.com", "password": PASSWORD}
    expired = client.post("/auth/sign-in", data={"csrf_token": token, **fields})
    again = client.post("/auth/sign-in", data={"csrf_token": csrf_token(expired.text), **fields})
    assert again.status_code == 303
    assert client.get("/auth/session").status_code == 200


def test_an_expired_sign_up_form_keeps_the_user_columns(client: FlaskClient) -> None:
    token = csrf_token(client.get("/auth/sign-up").text)
    drop_flask_session(client)
    page = client.post(
        "/auth/sign-up",
        data={
            "csrf_token": token,
            "identifier": "ann@example.com",
            "password": PASSWORD,
            "username": "ann",
        },
    )
    assert "This form expired" in alert(page.text)
    assert field_value(page.text, "username") == "ann"
    assert field_value(page.text, "identifier") == "ann@example.com"


def test_with_csrfprotect_an_expired_form_says_so_and_keeps_what_was_typed(
    make_app: Any,
) -> None:
    app = make_app()
    CSRFProtect(app)
    client = browser(app)
    token = csrf_token(client.get("/auth/sign-in").text)
    drop_flask_session(client)
    page = client.post(
        "/auth/sign-in",
        data={"csrf_token": token, "identifier": "ann@example.com", "password": PASSWORD},
    )
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "This form expired" in alert(page.text)
    assert field_value(page.text, "identifier") == "ann@example.com"
    assert csrf_token(page.text) != token


# -- cross-site posts, 404 and 405: a page for browsers, JSON for scripts -------------------


def test_a_cross_site_form_post_gets_an_html_403_page(app: Flask) -> None:
    page = browser(app).post(
        "/auth/sign-in", data={"identifier": "a@b.c", "password": PASSWORD}, headers=EVIL
    )
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert "came from another site" in alert(page.text)
    assert page.headers["Cache-Control"] == "no-store"


def test_a_cross_site_json_post_keeps_its_json_403(client: FlaskClient) -> None:
    response = client.post(
        "/auth/sign-in", json={"identifier": "a@b.c", "password": PASSWORD}, headers=EVIL
    )
    assert response.status_code == 403 and response.json["error"] == "AUTH_INVALID_REQUEST"


def test_a_cross_site_sign_out_form_gets_the_page_and_keeps_the_session(app: Flask) -> None:
    client = browser(app)
    sign_up(client)
    page = client.post("/auth/sign-out", data={"redirect": ""}, headers=EVIL)
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert client.get("/auth/session", headers={"Accept": "application/json"}).status_code == 200


def test_a_cross_site_form_post_to_an_app_route_with_cookies_gets_the_page(app: Flask) -> None:
    @app.post("/transfer")
    def transfer() -> str:
        return "sent"

    client = browser(app)
    sign_up(client)
    page = client.post("/transfer", data={"to": "mallory"}, headers=EVIL)
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert "came from another site" in alert(page.text)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/auth/nowhere", 404), ("POST", "/auth/session", 405), ("GET", "/auth", 404)],
)
def test_a_miss_under_the_prefix_is_a_page_for_browsers(
    app: Flask, method: str, path: str, status: int
) -> None:
    page = browser(app).open(path, method=method)
    assert page.status_code == status and page.mimetype == "text/html"
    assert 'href="/auth/lucia.css"' in page.text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/auth/nowhere", 404), ("POST", "/auth/session", 405), ("DELETE", "/auth/x", 404)],
)
def test_a_miss_under_the_prefix_is_json_for_scripts(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method, headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.json["error"] == "AUTH_INVALID_REQUEST" and response.json["message"]


def test_error_pages_outside_the_blueprints_hooks_refuse_framing_and_caching(
    app: Flask,
) -> None:
    @app.post("/transfer")
    def transfer() -> str:
        return "sent"

    client = browser(app)
    missing = client.get("/auth/nowhere")
    sign_up(client)
    refused = client.post("/transfer", data={}, headers=EVIL)
    for page in (missing, refused):
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers.getlist("Content-Security-Policy") == ["frame-ancestors 'none'"]
        assert page.headers["Cache-Control"] == "no-store"


def test_a_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.post("/auth/session", json={})
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_the_apps_own_404s_are_left_to_the_app(app: Flask) -> None:
    @app.errorhandler(404)
    def mine(error: Exception) -> tuple[str, int]:
        return "the app's own 404", 404

    assert browser(app).get("/nowhere").text == "the app's own 404"
    assert browser(app).get("/authx").text == "the app's own 404"


def test_without_the_form_views_every_answer_is_json(make_app: Any) -> None:
    client = browser(make_app(LUCIA_REGISTER_VIEWS=False))
    assert client.get("/auth/nowhere").json["error"] == "AUTH_INVALID_REQUEST"
    assert client.get("/auth/sign-in").mimetype == "application/json"


# -- a signed-in user at sign-in or sign-up -------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up"])
def test_a_signed_in_user_opening_the_form_is_sent_to_next(client: FlaskClient, path: str) -> None:
    sign_up(client)
    response = client.get(f"{path}?next=/private")
    assert response.status_code == 303 and response.location == "/private"


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/sign-up"])
def test_a_signed_in_user_without_next_is_sent_home(client: FlaskClient, path: str) -> None:
    sign_up(client)
    for target in ("", "?next=https://evil.example/"):
        response = client.get(path + target)
        assert response.status_code == 303 and response.location == "/"


def test_a_signed_in_user_may_still_post_the_sign_in_form_to_switch(client: FlaskClient) -> None:
    first = sign_up(client, "a@example.com")["user"]["user_id"]
    client.post("/auth/sign-out", json={})
    sign_up(client, "b@example.com")
    token = csrf_token(client.get("/auth/confirm").text)
    response = client.post(
        "/auth/sign-in",
        data={"csrf_token": token, "identifier": "a@example.com", "password": PASSWORD},
    )
    assert response.status_code == 303
    assert client.get("/auth/session").json["user"]["user_id"] == first


# -- where the sign-out form goes ---------------------------------------------------------


def test_the_sign_out_form_without_a_redirect_lands_on_the_sign_in_page(app: Flask) -> None:
    client = browser(app)
    sign_up(client)
    response = client.post("/auth/sign-out", data={"redirect": ""}, follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == "/auth/sign-in"


def test_the_sign_out_form_goes_to_lucia_sign_out_redirect(make_app: Any) -> None:
    client = browser(make_app(LUCIA_SIGN_OUT_REDIRECT="/goodbye"))
    sign_up(client)
    response = client.post("/auth/sign-out", data={"redirect": ""})
    assert response.status_code == 303 and response.location == "/goodbye"


def test_a_redirect_in_the_form_still_wins(make_app: Any) -> None:
    client = browser(make_app(LUCIA_SIGN_OUT_REDIRECT="/goodbye"))
    sign_up(client)
    response = client.post("/auth/sign-out", data={"redirect": "/bye"})
    assert response.location == "/bye"


@pytest.mark.parametrize(
    ("value", "error"), [(5, TypeError), ("goodbye", ValueError), ("//evil.example", ValueError)]
)
def test_a_bad_sign_out_redirect_is_refused_at_start_up(
    make_app: Any, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="LUCIA_SIGN_OUT_REDIRECT"):
        make_app(LUCIA_SIGN_OUT_REDIRECT=value)


def test_a_json_sign_out_without_a_redirect_still_stays(client: FlaskClient) -> None:
    sign_up(client)
    assert client.post("/auth/sign-out", json={}).json == {"redirect": None}


# -- the devices page ---------------------------------------------------------------------

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (CHROME_LINUX, "Chrome on Linux"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("python-requests/2.31.0", "Python Requests"),
        ("TestBrowser/1.0", "TestBrowser/1.0"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)
def test_devices_are_named_by_browser_and_system(agent: str | None, name: str) -> None:
    assert device_name(agent) == name


def test_an_unknown_long_agent_is_cut() -> None:
    assert device_name("x" * 500) == "x" * 59 + "…"


@pytest.mark.parametrize(
    ("before", "words"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=2, seconds=30), "2 minutes ago"),
        (timedelta(hours=3), "3 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=12), "12 days ago"),
    ],
)
def test_times_are_said_relative_to_now(before: timedelta, words: str) -> None:
    now = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert ago(now - before, now) == words


def test_the_devices_page_names_devices_and_marks_this_one(app: Flask) -> None:
    phone = browser(app)
    phone.environ_base["HTTP_USER_AGENT"] = SAFARI_IPHONE
    sign_up(phone)
    laptop = browser(app)
    laptop.environ_base["HTTP_USER_AGENT"] = CHROME_LINUX
    laptop.post("/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD})
    page = laptop.get("/auth/devices").text
    assert "Safari on iPhone" in page and "Chrome on Linux" in page
    mine = page.index("Chrome on Linux")
    assert page.index("This device", mine) < page.index("Sign out this device", mine)
    assert page.count("This device<") == 1


def test_the_devices_page_says_times_relatively_with_the_exact_time_on_hover(
    app: Flask,
) -> None:
    client = browser(app)
    sign_up(client)
    page = client.get("/auth/devices").text
    times = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', page)
    assert times, page
    for stamp, title, words in times:
        moment = datetime.fromisoformat(stamp)
        assert title == moment.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert words == "just now"


def test_the_devices_page_links_back_to_the_app(client: FlaskClient) -> None:
    sign_up(client)
    assert re.search(r'<a href="/">Back to the app</a>', client.get("/auth/devices").text)


# -- one stylesheet ---------------------------------------------------------------------------


def test_the_built_in_pages_share_one_cacheable_stylesheet(client: FlaskClient) -> None:
    sheet = client.get("/auth/lucia.css")
    assert sheet.status_code == 200 and sheet.mimetype == "text/css"
    assert "max-age=3600" in sheet.headers["Cache-Control"]
    assert "box-sizing: border-box" in sheet.text
    page = client.get("/auth/sign-in").text
    assert '<link rel="stylesheet" href="/auth/lucia.css">' in page and "<style" not in page


def test_the_built_in_pages_load_the_module_that_announces_a_sign_out(
    client: FlaskClient,
) -> None:
    assert 'id="lucia-page-data"' in client.get("/auth/sign-in").text


def test_lucia_error_keeps_its_code_when_reworded() -> None:
    from flask_lucia.messages import for_user

    throttled = LuciaError("AUTH_TOO_MANY_ATTEMPTS", retry_after=240)
    with Flask(__name__).app_context():
        reworded = for_user(throttled, "sign_in")
    assert (reworded.code, reworded.retry_after) == ("AUTH_TOO_MANY_ATTEMPTS", 240)
