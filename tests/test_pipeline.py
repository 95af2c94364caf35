"""One sign-in pipeline (DESIGN §19): every way in ends in ``finish_sign_in``; sessions
record how they were made (``amr``, ``aal``); enforced MFA holds a sign-in for enrolment;
"trust this browser"; signing out everywhere; step-up by any factor. Against the test
OpenID Connect provider, a real SMTP server and codes from pyotp."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia.testing import sign_in_client
from flask_lucia.web.pipeline import stage_table

from .conftest import PASSWORD, AppFactory, Clock, sign_up
from .mailserver import MailServer, flows_app
from .oidc import OIDCProvider, ProviderBrowser
from .test_oauth import finish, start
from .test_two_factor import browser, code_at, password_step, rows, turn_on

ANN = "ann@example.com"
JSON = {"Accept": "application/json"}
DOCS = Path(__file__).parent.parent / "docs" / "pipeline.rst"


@pytest.fixture
def app(make_app: AppFactory, smtp: MailServer, oidc: OIDCProvider) -> Flask:
    """Mail to ``smtp``, the provider ``corp``, and verification off."""
    return flows_app(
        make_app,
        smtp,
        LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()},
        LUCIA_EMAIL_VERIFICATION="off",
    )


def session_of(client: FlaskClient) -> Any:
    """The ``session`` part of ``GET /auth/session`` (None when signed out)."""
    answer = client.get("/auth/session")
    return answer.json["session"] if answer.status_code == 200 else None


def ann_with_totp(app: Flask, clock: Clock) -> str:
    """Ann signed up with TOTP on, then signed out; her secret."""
    client = browser(app)
    sign_up(client)
    secret, _ = turn_on(client, clock)
    client.post("/auth/sign-out", json={})
    return secret


def provider_round_trip(client: FlaskClient, oidc: OIDCProvider, login: str = "alice") -> Any:
    """The browser through ``corp`` and back (JSON answer)."""
    callback = ProviderBrowser(oidc).authorize(start(client), login)
    return finish(client, callback, json=True)


# -- how a session was made --------------------------------------------------------------


def test_a_password_sign_in_is_amr_pwd_and_aal_1(app: Flask) -> None:
    client = browser(app)
    sign_up(client)
    client.post("/auth/sign-out", json={})

    password_step(client)

    assert session_of(client) | {"expires": 0, "checksum": ""} == {
        "expires": 0,
        "checksum": "",
        "amr": ["pwd"],
        "aal": 1,
    }


def test_a_code_after_the_password_makes_amr_pwd_otp_and_aal_2(app: Flask, clock: Clock) -> None:
    secret = ann_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    answer = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert answer.json["session"]["amr"] == ["pwd", "otp"] and answer.json["session"]["aal"] == 2


def test_a_recovery_code_after_the_password_makes_amr_pwd_recovery(
    app: Flask, clock: Clock
) -> None:
    client = browser(app)
    sign_up(client)
    _, codes = turn_on(client, clock)
    other = browser(app, "Other Browser/2.0")
    password_step(other)

    answer = other.post("/auth/two-factor/verify", json={"code": codes[0]})

    assert answer.json["session"]["amr"] == ["pwd", "recovery"]


def test_a_provider_sign_in_is_amr_oauth_and_its_name(app: Flask, oidc: OIDCProvider) -> None:
    client = browser(app)

    provider_round_trip(client, oidc)

    assert session_of(client)["amr"] == ["oauth:corp"] and session_of(client)["aal"] == 1


def test_a_provider_sign_in_of_an_account_with_totp_waits_for_the_code(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    client = browser(app)
    provider_round_trip(client, oidc)
    secret, _ = turn_on(client, clock)
    client.post("/auth/sign-out", json={})

    pending = provider_round_trip(client, oidc)
    nothing = session_of(client)
    done = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert pending.status_code == 401 and pending.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert nothing is None and "access_token" not in pending.json
    assert done.json["session"]["amr"] == ["oauth:corp", "otp"]


def test_a_reset_link_with_the_code_signs_in_as_link_and_otp(
    app: Flask, smtp: MailServer, clock: Clock
) -> None:
    secret = ann_with_totp(app, clock)
    client = browser(app)
    client.post("/auth/reset-password", json={"email": ANN})
    link = smtp.link(ANN)

    answer = client.post(
        link, json={"password": "a brand new pass", "code": code_at(secret, clock)}
    )

    assert answer.status_code == 200 and answer.json["session"]["amr"] == ["link", "otp"]


def test_a_signed_in_request_reads_amr_and_aal_in_its_one_query(
    app: Flask, clock: Clock, queries: list[str]
) -> None:
    secret = ann_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})
    queries.clear()

    answer = client.get("/auth/session")

    assert answer.json["session"]["amr"] == ["pwd", "otp"] and len(queries) == 1


def test_the_docs_table_of_stages_is_the_one_the_code_makes() -> None:
    assert stage_table() in DOCS.read_text()


# -- the JSON body transport gets the same stages --------------------------------------


def test_a_body_transport_sign_in_with_totp_answers_pending_without_tokens(
    app: Flask, clock: Clock
) -> None:
    secret = ann_with_totp(app, clock)
    client = browser(app)
    body = {"identifier": ANN, "password": PASSWORD, "transport": "body"}

    pending = client.post("/auth/sign-in", json=body)
    done = client.post(
        "/auth/two-factor/verify", json={"code": code_at(secret, clock), "transport": "body"}
    )

    assert pending.status_code == 401 and "access_token" not in pending.json
    assert (
        done.status_code == 200 and done.json["access_token"] and done.json["session"]["aal"] == 2
    )
    assert client.get_cookie("lucia_access_token") is None


# -- the app's own allow-hook ------------------------------------------------------------


def test_allow_sign_in_refuses_a_banned_user_and_makes_no_session(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off")
    client = browser(app)
    sign_up(client, username="banned")
    client.post("/auth/sign-out", json={})
    app.config["LUCIA_ALLOW_SIGN_IN"] = lambda user: user.username != "banned"

    answer = password_step(client)

    assert answer.status_code == 403 and session_of(client) is None


# -- enforced MFA and enrolment ----------------------------------------------------------


@pytest.fixture
def strict(make_app: AppFactory, smtp: MailServer) -> Flask:
    """An app that asks every user for a second factor."""
    return flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off", LUCIA_MFA_REQUIRED=True)


def test_mfa_required_holds_a_sign_up_for_enrolment_with_no_session(strict: Flask) -> None:
    client = browser(strict)

    answer = client.post("/auth/sign-up", json={"identifier": ANN, "password": PASSWORD})

    assert answer.status_code == 401
    assert answer.json["error"] == "AUTH_SECOND_FACTOR_SETUP_REQUIRED"
    assert answer.json["setup"] == "/auth/two-factor" and session_of(client) is None


def test_enrolment_with_the_pending_cookie_turns_totp_on_and_signs_in_at_aal_2(
    strict: Flask, clock: Clock
) -> None:
    client = browser(strict)
    client.post("/auth/sign-up", json={"identifier": ANN, "password": PASSWORD})

    secret = client.post("/auth/two-factor", json={}).json["secret"]
    done = client.post("/auth/two-factor", json={"secret": secret, "code": code_at(secret, clock)})

    assert done.status_code == 200 and len(done.json["recovery_codes"]) == 10
    assert done.json["session"]["amr"] == ["pwd", "otp"] and session_of(client)["aal"] == 2


def test_the_enrolment_page_walks_a_pending_sign_in_through_setup(strict: Flask) -> None:
    client = browser(strict)
    client.post("/auth/sign-up", json={"identifier": ANN, "password": PASSWORD})

    page = client.get("/auth/two-factor")

    assert page.status_code == 200 and "Set it up now to finish signing in" in page.text
    assert "<svg" in page.text


def test_mfa_required_as_a_function_asks_only_the_users_it_names(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(
        make_app,
        smtp,
        LUCIA_EMAIL_VERIFICATION="off",
        LUCIA_MFA_REQUIRED=lambda user: user.username == "admin",
    )
    client = browser(app)

    plain = client.post(
        "/auth/sign-up", json={"identifier": ANN, "password": PASSWORD, "username": "ann"}
    )
    admin = browser(app).post(
        "/auth/sign-up",
        json={"identifier": "root@example.com", "password": PASSWORD, "username": "admin"},
    )

    assert plain.status_code == 201 and admin.status_code == 401


def test_a_pending_enrolment_cannot_give_a_code_at_verify(strict: Flask) -> None:
    client = browser(strict)
    client.post("/auth/sign-up", json={"identifier": ANN, "password": PASSWORD})

    answer = client.post("/auth/two-factor/verify", json={"code": "123456"})

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_SETUP_REQUIRED"


# -- trust this browser ------------------------------------------------------------------


def trusted_browser(app: Flask, clock: Clock) -> tuple[FlaskClient, str]:
    """Ann with TOTP; a browser that gave her code with "trust this browser", then signed
    out; that browser and her secret."""
    secret = ann_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    answer = client.post(
        "/auth/two-factor/verify", json={"code": code_at(secret, clock), "trust_browser": True}
    )
    assert answer.status_code == 200, answer.json
    client.post("/auth/sign-out", json={})
    clock.advance(30)
    return client, secret


def test_a_trusted_browser_signs_in_with_the_password_alone_as_aal_2_with_device(
    app: Flask, clock: Clock
) -> None:
    client, _ = trusted_browser(app, clock)

    answer = password_step(client)

    assert answer.status_code == 200
    assert answer.json["session"]["amr"] == ["pwd", "device"] and answer.json["session"]["aal"] == 2


def test_trust_is_stored_as_a_digest_only(app: Flask, clock: Clock) -> None:
    client, _ = trusted_browser(app, clock)

    (row,) = rows(app, "trusted_browsers")

    assert len(row[0]) == 64 and client.get_cookie("lucia_device").value not in row[0]


def test_trust_is_not_honoured_for_another_user_of_the_same_browser(
    app: Flask, clock: Clock
) -> None:
    client, _ = trusted_browser(app, clock)
    other = browser(app)
    sign_up(other, "bob@example.com")
    turn_on(other, clock)

    answer = client.post(
        "/auth/sign-in", json={"identifier": "bob@example.com", "password": PASSWORD}
    )

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"


def test_trust_is_not_honoured_in_a_browser_without_its_device_cookie(
    app: Flask, clock: Clock
) -> None:
    client, _ = trusted_browser(app, clock)
    client.delete_cookie("lucia_device")

    assert password_step(client).status_code == 401


def test_trust_ends_when_the_factors_change(app: Flask, clock: Clock) -> None:
    client, _ = trusted_browser(app, clock)
    password_step(client)  # trusted: a whole sign-in, fresh and aal 2
    trusted = rows(app, "trusted_browsers")

    answer = client.delete("/auth/two-factor", json={})

    assert answer.status_code == 200 and len(trusted) == 1
    assert rows(app, "trusted_browsers") == []


def test_trust_ends_when_the_user_signs_out_everywhere(app: Flask, clock: Clock) -> None:
    client, secret = trusted_browser(app, clock)
    other = browser(app, "Other Browser/2.0")
    password_step(other)
    other.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    other.post("/auth/sign-out", json={"everywhere": True})

    assert rows(app, "trusted_browsers") == [] and password_step(client).status_code == 401


def test_trust_ends_after_lucia_mfa_trust_for(app: Flask, clock: Clock) -> None:
    client, _ = trusted_browser(app, clock)
    clock.advance(31 * 24 * 3600)

    assert password_step(client).status_code == 401


# -- signing out everywhere --------------------------------------------------------------


def test_sign_out_everywhere_ends_every_session_of_the_user(app: Flask) -> None:
    one, two = browser(app), browser(app, "Other Browser/2.0")
    sign_up(one)
    password_step(two)

    answer = one.post("/auth/sign-out", json={"everywhere": True})

    assert answer.status_code == 200 and rows(app, "sessions") == []
    assert session_of(two) is None


def test_sign_out_everywhere_must_be_a_boolean(app: Flask) -> None:
    client = browser(app)
    sign_up(client)

    answer = client.post("/auth/sign-out", json={"everywhere": "yes please"})

    assert answer.status_code == 400 and len(rows(app, "sessions")) == 1


# -- step-up by any factor ---------------------------------------------------------------


def test_turning_totp_on_makes_the_current_session_aal_2(app: Flask, clock: Clock) -> None:
    client = browser(app)
    sign_up(client)

    turn_on(client, clock)

    assert session_of(client)["amr"] == ["pwd", "otp"] and session_of(client)["aal"] == 2


def test_confirm_takes_a_code_and_makes_the_session_fresh_and_aal_2(
    app: Flask, clock: Clock
) -> None:
    secret = ann_with_totp(app, clock)
    client = browser(app)
    sign_in_client(client, rows(app, "totp")[0][0], fresh=False)

    answer = client.post("/auth/confirm", json={"code": code_at(secret, clock)})

    assert answer.status_code == 200 and answer.json["fresh"] is True and answer.json["aal"] == 2


def test_confirm_refuses_a_wrong_code(app: Flask, clock: Clock) -> None:
    ann_with_totp(app, clock)
    client = browser(app)
    sign_in_client(client, rows(app, "totp")[0][0], fresh=False)

    answer = client.post("/auth/confirm", json={"code": "000000"})

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_CODE"


def test_a_provider_only_user_becomes_fresh_through_its_linked_provider(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    client = browser(app)
    provider_round_trip(client, oidc)
    clock.advance(11 * 60)
    stale = client.get("/auth/two-factor", headers=JSON)

    again = provider_round_trip(client, oidc)

    assert stale.status_code == 401 and stale.json["fresh_required"] is True
    assert again.json["fresh"] is True
    assert client.get("/auth/two-factor", headers=JSON).status_code == 200


# -- the devices page --------------------------------------------------------------------


def test_the_devices_page_shows_the_way_in_in_words(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    secret = ann_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    page = client.get("/auth/devices")

    assert "Signed in with password and authenticator app" in page.text
    assert "Sign out everywhere" in page.text


def test_the_devices_list_answers_each_sessions_amr(app: Flask, oidc: OIDCProvider) -> None:
    client = browser(app)
    provider_round_trip(client, oidc)

    listed = client.get("/auth/sessions").json["sessions"]

    assert [(s["amr"], s["aal"]) for s in listed] == [(["oauth:corp"], 1)]


def test_the_verify_page_offers_trust_and_no_passkey_to_an_account_without_one(
    app: Flask, clock: Clock
) -> None:
    ann_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    page = client.get("/auth/two-factor/verify", headers={"Accept": "text/html"})

    # _lucia escapes the sentence (an apostrophe becomes &#39;), the browser shows it as written
    assert "Don't ask again on this browser for 30 days" in html.unescape(page.text)
    assert "lucia-passkey" not in page.text
