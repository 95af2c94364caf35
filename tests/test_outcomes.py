"""What people read after they act: each outcome on the page they land on, flashes by
category, destructive actions behind a confirm step, mail limits per flow worded as what
happened, no mailed link in a production log, recovery codes without look-alikes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import messages, mfa_required
from flask_lucia.mail import NOT_SENT
from flask_lucia.mfa import totp

from .conftest import ORIGIN, PASSWORD, AppFactory, sign_up
from .mailserver import MailServer, flows_app
from .test_forms import csrf_token
from .test_reset import DEFAULT_LIMITS

NEW = "a brand new passphrase"


def browser(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def test_a_changed_password_is_said_on_the_page_the_user_lands_on(client: FlaskClient) -> None:
    sign_up(client)
    token = csrf_token(client.get("/auth/change-password").text)
    form = {"csrf_token": token, "current_password": PASSWORD, "password": NEW, "confirm": NEW}
    landed = client.post("/auth/change-password", data=form, follow_redirects=True)
    assert landed.request.path == "/auth/done"
    assert f'<p class="flash success" role="status">{messages.PASSWORD_CHANGED}</p>' in landed.text
    assert "<h1>Password changed</h1>" in landed.text


def test_a_deleted_account_is_said_on_the_page_the_user_lands_on(client: FlaskClient) -> None:
    sign_up(client)
    token = csrf_token(client.get("/auth/delete-account").text)
    form = {"csrf_token": token, "confirm": "y"}
    landed = client.post("/auth/delete-account", data=form, follow_redirects=True)
    assert messages.ACCOUNT_DELETED in landed.text and "<h1>Account deleted</h1>" in landed.text


def test_the_outcome_page_reloaded_without_its_message_goes_home(client: FlaskClient) -> None:
    answer = client.get("/auth/done?what=password_changed")
    assert answer.status_code == 303 and answer.location == "/"


def test_the_outcome_page_knows_only_its_outcomes(client: FlaskClient) -> None:
    assert (
        client.get("/auth/done?what=anything", headers={"Accept": "text/html"}).status_code == 404
    )


def test_a_page_that_needs_a_second_factor_says_why_it_sent_the_user_to_set_one_up(
    app: Flask, client: FlaskClient
) -> None:
    app.add_url_rule("/vault", "vault", mfa_required(lambda: "vault"))
    sign_up(client)
    page = client.get("/vault", headers={"Accept": "text/html"}, follow_redirects=True)
    assert page.request.path == "/auth/two-factor"
    assert f'class="flash info" role="status">{messages.SECOND_FACTOR_FIRST}' in page.text


def test_an_expired_form_is_flashed_as_an_error(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/two-factor/disable", data={"csrf_token": "stale"})
    page = client.get("/auth/two-factor").text
    assert f'<p class="flash error" role="alert">{messages.FORM_EXPIRED}</p>' in page


def confirm_steps(page: str) -> list[str]:
    """The labels of the confirm steps of a page (details.confirm with a submit inside)."""
    steps = re.findall(
        r'<details class="confirm">\s*<summary[^>]*>([^<]+)</summary>.*?'
        r'<button type="submit" class="danger">',
        page,
        re.S,
    )
    return [step.strip() for step in steps]


def test_signing_a_device_out_asks_first(client: FlaskClient) -> None:
    sign_up(client)
    page = client.get("/auth/devices").text
    assert confirm_steps(page) == ["Sign out this device", "Sign out everywhere"]
    assert page.count('type="submit"') == 2  # each inside its confirm step


def test_turning_two_factor_off_and_new_codes_ask_first(app: Flask, client: FlaskClient) -> None:
    sign_up(client)
    html = client.get("/auth/two-factor").text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)  # type: ignore[union-attr]
    form = {"code": totp._pyotp().TOTP(secret).now(), "secret": secret}
    client.post("/auth/two-factor", data={"csrf_token": csrf_token(html), **form})
    steps = confirm_steps(client.get("/auth/two-factor").text)
    assert steps == ["Make new recovery codes", "Turn two-factor authentication off"]


def test_deleting_the_account_is_a_red_button_with_a_box_to_tick_and_a_way_back(
    client: FlaskClient,
) -> None:
    sign_up(client)
    page = client.get("/auth/delete-account").text
    assert '<button type="submit" class="danger">Delete my account</button>' in page
    assert re.search(r'<input[^>]*name="confirm"[^>]*type="checkbox"', page)
    assert '<a href="/">Cancel, keep my account</a>' in page


# -- mail ------------------------------------------------------------------------------


def test_a_reset_right_after_the_sign_up_mail_is_sent(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp, **DEFAULT_LIMITS)
    client = browser(app)
    sign_up(client)  # mails the verification link
    answer = client.post("/auth/reset-password", json={"email": "ann@example.com"})
    assert answer.status_code == 200
    assert [m["Subject"] for m in smtp.messages] == [
        "Verify your email address",
        "Reset your password",
    ]


def test_a_second_reset_within_the_minute_says_what_happened(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp, **DEFAULT_LIMITS)
    client = browser(app)
    client.post("/auth/reset-password", json={"email": "ann@example.com"})
    answer = client.post("/auth/reset-password", json={"email": "ann@example.com"})
    assert answer.status_code == 429
    assert answer.json["message"].startswith("We just sent an email like this to that address")


def reset_in_production(make_app: AppFactory, **config: Any) -> Any:
    """Ann asks for a reset link from an app out of debug and testing mode; the answer."""
    app = make_app(LUCIA_BASE_URL="https://app.example", **config)
    app.testing = False
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)  # type: ignore[attr-defined]
    return app.test_client().post(
        "/auth/reset-password",
        json={"email": "ann@example.com"},
        base_url="https://app.example",
        headers={"Origin": "https://app.example"},
    )


def test_production_without_a_mail_server_logs_no_link_and_says_not_sent(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answer = reset_in_production(make_app)
    assert answer.status_code == 503 and answer.json["message"] == NOT_SENT
    assert "/auth/reset-password/" not in caplog.text
    assert "MAIL_SERVER" in caplog.text and "LUCIA_LOG_EMAILS" in caplog.text


def test_log_emails_prints_the_mail_on_a_development_machine(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answer = reset_in_production(make_app, LUCIA_LOG_EMAILS=True)
    assert answer.status_code == 200 and "https://app.example/auth/reset-password/" in caplog.text


# -- recovery codes --------------------------------------------------------------------


def test_new_recovery_codes_have_no_look_alikes() -> None:
    letters = set("".join(totp.new_recovery_codes()).replace("-", ""))
    assert letters and not letters & set("il1o0")


def test_a_recovery_code_of_the_old_alphabet_still_counts_with_0_and_1_read_as_o_and_l() -> None:
    old = "lxoq-abcd-efgh-ijk2"
    assert totp.recovery_digest(old) is not None
    assert totp.recovery_digest("1xOq abcd efgh ijk2") == totp.recovery_digest(old)
