"""The example app in examples/: its pages work end to end on SQLite."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys
from typing import Any

import pytest
from flask import Flask

from .conftest import ORIGIN, PASSWORD

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "app.py"


def load_example(database: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """Import examples/app.py afresh, on its own database; its ``app``."""
    monkeypatch.setenv("FLASK_LUCIA_DATABASE_URL", database)
    spec = importlib.util.spec_from_file_location("example_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "example_app", module)  # Flask finds its root path here
    spec.loader.exec_module(module)
    app: Flask = module.app
    return app


@pytest.fixture
def example(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    app = load_example(f"sqlite:///{tmp_path / 'example.db'}", monkeypatch)
    app.testing = True
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def test_the_home_page_offers_sign_in_and_sign_up(example: Any) -> None:
    page = example.get("/").text
    assert 'href="/auth/sign-in?next=/dashboard"' in page
    assert 'href="/auth/sign-up?next=/dashboard"' in page
    assert 'id="lucia-page-data"' in page


def test_the_dashboard_needs_a_session(example: Any) -> None:
    assert example.get("/dashboard", headers={"Accept": "application/json"}).status_code == 401


def test_sign_up_then_the_dashboard_greets_the_user_and_links_to_the_devices(
    example: Any,
) -> None:
    response = example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
        headers={"User-Agent": "TestBrowser/1.0"},
    )
    assert response.status_code == 201
    page = example.get("/dashboard").text
    assert "Hello, ann" in page and 'href="/auth/devices"' in page
    devices = example.get("/auth/devices").text
    assert "TestBrowser/1.0" in devices and "This device" in devices


def test_sign_up_without_a_username_is_refused(example: Any) -> None:
    form = example.post(
        "/auth/sign-up", data={"identifier": "ann@example.com", "password": PASSWORD}
    )
    as_json = example.post(
        "/auth/sign-up", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert form.status_code == as_json.status_code == 400
    assert 'name="username" required' in form.text
    assert example.get("/auth/session").status_code == 401


def test_a_signed_in_user_sees_no_sign_in_or_sign_up_form(example: Any) -> None:
    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    home = example.get("/").text
    assert "/auth/sign-in" not in home and "/auth/sign-up" not in home
    assert example.get("/auth/sign-in?next=/dashboard").location == "/dashboard"
    assert example.get("/auth/sign-up").location == "/"


def test_the_sign_out_button_ends_the_session(example: Any) -> None:
    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    response = example.post("/auth/sign-out", data={"redirect": "/"})
    assert response.status_code == 303 and response.location == "/"
    assert 'href="/auth/sign-in?next=/dashboard"' in example.get("/").text


def test_the_sign_up_form_asks_for_the_username_and_the_browser_sees_it(example: Any) -> None:
    assert 'name="username"' in example.get("/auth/sign-up").text
    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    assert example.get("/auth/session").json["user"]["username"] == "ann"


def test_the_settings_page_offers_two_factor_and_passkeys(example: Any) -> None:
    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    page = example.get("/settings").text
    assert 'href="/auth/two-factor"' in page and "Turn on two-factor sign-in" in page
    assert 'href="/auth/passkeys"' in page and "Add or manage passkeys" in page


def test_the_settings_page_shows_two_factor_on_once_it_is(example: Any) -> None:
    import pyotp

    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    secret = example.post("/auth/two-factor", json={}).json["secret"]
    example.post("/auth/two-factor", json={"secret": secret, "code": pyotp.TOTP(secret).now()})

    assert "On: after your password" in example.get("/settings").text
    assert example.get("/vault").status_code == 200  # confirming counted as MFA


def test_the_vault_asks_a_password_only_session_for_a_second_factor(example: Any) -> None:
    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    answer = example.get("/vault")
    assert answer.status_code == 302
    assert answer.location.startswith("/auth/two-factor/verify")


def test_the_example_offers_forgot_your_password(example: Any) -> None:
    assert 'href="/auth/reset-password">Forgot your password?</a>' in example.get("/").text
    assert 'href="/auth/reset-password">Forgot your password?</a>' in example.get(
        "/auth/sign-in"
    ).get_data(as_text=True)


def test_without_a_mail_server_the_example_prints_the_verification_link_to_its_log(
    example: Any, caplog: pytest.LogCaptureFixture
) -> None:
    example.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD, "username": "ann"},
    )
    assert "is not verified yet" in example.get("/dashboard").text
    [logged] = [r.getMessage() for r in caplog.records if "was not sent" in r.getMessage()]
    link = re.search(r"http://localhost:5000(/auth/verify-email/\w+)", logged)
    assert link, logged
    assert example.get(link.group(1)).status_code == 200
    assert "Your email ann@example.com is verified." in example.get("/dashboard").text
