"""Adding a way in needs a fresh session and the second factor (DESIGN §18), a provider
sign-in passes the second factor like a password sign-in, and the owner is told by mail
of every change to the ways in and of a sign-in from a new browser. Against the test
OpenID Connect provider, a real SMTP server and codes from pyotp."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import signals
from flask_lucia.testing import sign_in_client

from .conftest import PASSWORD, AppFactory, Clock, sign_up
from .mailserver import MailServer, flows_app, text_of
from .oidc import OIDCProvider, ProviderBrowser
from .soft_authenticator import SoftAuthenticator
from .test_oauth import finish, keys_of, signed_in_user, start
from .test_passkeys import register
from .test_two_factor import browser, code_at, password_step, turn_on

ANN = "ann@example.com"
NEW_SIGN_IN = "New sign-in to your account"
JSON = {"Accept": "application/json"}
MINUTE = 60


@pytest.fixture
def app(make_app: AppFactory, smtp: MailServer, oidc: OIDCProvider) -> Flask:
    """Mail to ``smtp``, the provider ``corp``, and verification off (one mail less)."""
    return flows_app(
        make_app,
        smtp,
        LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()},
        LUCIA_EMAIL_VERIFICATION="off",
    )


def subjects(smtp: MailServer, address: str = ANN) -> list[str]:
    return [str(message["Subject"]) for message in smtp.to(address)]


def corp_round_trip(
    client: FlaskClient, oidc: OIDCProvider, login: str = "mallory", *, json: bool = True
) -> Any:
    """The round trip at the provider as ``login``: a signed-in browser links
    ``corp:<login>`` (if allowed), any other signs in with it. The callback's answer."""
    return finish(client, ProviderBrowser(oidc).authorize(start(client), login), json=json)


def ann_with_totp(app: Flask, clock: Clock) -> tuple[FlaskClient, str]:
    """Ann signed up in her browser with TOTP on; that browser and her secret."""
    client = browser(app)
    sign_up(client)
    secret, _ = turn_on(client, clock)
    return client, secret


def stolen_copy(app: Flask, victim: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of the victim's cookies."""
    thief = browser(app, "Thief Browser/1.0")
    for name in ("lucia_access_token", "lucia_refresh_token"):
        found = victim.get_cookie(name)
        assert found is not None
        thief.set_cookie(name, found.value)
    return thief


# -- the takeover: a stale stolen session links the thief's provider ---------------------


def test_a_stale_stolen_session_cannot_link_a_provider(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    victim, _ = ann_with_totp(app, clock)
    thief = stolen_copy(app, victim)
    clock.advance(11 * MINUTE)  # no longer fresh, the access token still good

    answer = corp_round_trip(thief, oidc)

    assert answer.status_code == 403
    assert answer.json["reason"] == "confirm_first"
    user_id = signed_in_user(victim)
    assert user_id is not None and keys_of(app, user_id) == [f"email:{ANN}"]


def test_a_fresh_session_without_the_second_factor_cannot_link_a_provider(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    victim, _ = ann_with_totp(app, clock)
    user_id = signed_in_user(victim)
    other = browser(app)
    sign_in_client(other, user_id, fresh=True, mfa=False)  # made before TOTP, say

    answer = corp_round_trip(other, oidc)

    assert answer.status_code == 403 and answer.json["reason"] == "confirm_first"
    assert keys_of(app, user_id) == [f"email:{ANN}"]


def test_a_fresh_session_that_proved_the_second_factor_links_and_the_owner_is_told(
    app: Flask, oidc: OIDCProvider, smtp: MailServer, clock: Clock
) -> None:
    owner, _ = ann_with_totp(app, clock)

    answer = corp_round_trip(owner, oidc)

    assert answer.status_code == 200 and answer.json == {"linked": "corp:mallory"}
    assert "A way to sign in was added to your account" in subjects(smtp)
    [notice] = [m for m in smtp.to(ANN) if "was added" in str(m["Subject"])]
    body = text_of(notice)
    assert "Corp was linked to your account" in body
    assert "Device: Test Browser/1.0" in body
    assert "http://localhost/auth/devices" in body


# -- a provider sign-in passes the second factor ---------------------------------------------


def test_a_provider_sign_in_to_an_account_with_a_second_factor_asks_for_the_code(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    owner, _ = ann_with_totp(app, clock)
    corp_round_trip(owner, oidc, "ann")
    elsewhere = browser(app)

    answer = corp_round_trip(elsewhere, oidc, "ann")

    assert answer.status_code == 401
    assert answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert signed_in_user(elsewhere) is None


def test_the_code_after_a_provider_sign_in_makes_an_mfa_session(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    owner, secret = ann_with_totp(app, clock)
    corp_round_trip(owner, oidc, "ann")
    elsewhere = browser(app)
    corp_round_trip(elsewhere, oidc, "ann", json=False)

    answer = elsewhere.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert answer.status_code == 200
    assert signed_in_user(elsewhere) == signed_in_user(owner)
    assert elsewhere.get("/auth/two-factor", headers=JSON).json["enabled"] is True


def test_a_provider_sign_in_finished_by_the_code_sends_user_signed_in_naming_the_provider(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    owner, secret = ann_with_totp(app, clock)
    corp_round_trip(owner, oidc, "ann")
    elsewhere = browser(app)
    heard: list[tuple[str, Any]] = []
    on_sign_in = signals.user_signed_in.connect_via(app)(
        lambda _app, user, session: heard.append(("user_signed_in", session.amr))
    )
    on_provider = signals.oauth_signed_in.connect_via(app)(
        lambda _app, **_: heard.append(("oauth_signed_in", None))
    )
    corp_round_trip(elsewhere, oidc, "ann", json=False)
    assert heard == []  # pending: nobody is signed in yet

    elsewhere.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert heard == [("user_signed_in", ("oauth:corp", "otp"))]
    del on_sign_in, on_provider


def test_a_provider_sign_in_from_a_browser_page_goes_to_the_code_page(
    app: Flask, oidc: OIDCProvider, clock: Clock
) -> None:
    owner, _ = ann_with_totp(app, clock)
    corp_round_trip(owner, oidc, "ann")
    elsewhere = browser(app)

    answer = corp_round_trip(elsewhere, oidc, "ann", json=False)

    assert answer.status_code == 303
    assert answer.location.startswith("/auth/two-factor/verify")
    assert signed_in_user(elsewhere) is None


# -- every way in needs a fresh session and the second factor --------------------------------


def test_a_passkey_cannot_be_registered_without_the_second_factor(app: Flask, clock: Clock) -> None:
    owner, _ = ann_with_totp(app, clock)
    other = browser(app)
    sign_in_client(other, signed_in_user(owner), fresh=True, mfa=False)

    answer = other.post("/auth/passkeys/register/options", json={})

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"


def test_a_passkey_cannot_be_registered_from_a_stale_session(app: Flask) -> None:
    client = browser(app)
    user_id = sign_up(client)["user"]["user_id"]
    sign_in_client(client, user_id, fresh=False)

    answer = client.post("/auth/passkeys/register/options", json={})

    assert answer.status_code == 401 and answer.json["fresh_required"] is True


def test_the_address_cannot_be_changed_without_the_second_factor(
    app: Flask, smtp: MailServer, clock: Clock
) -> None:
    owner, _ = ann_with_totp(app, clock)
    other = browser(app)
    sign_in_client(other, signed_in_user(owner), fresh=True, mfa=False)

    answer = other.post("/auth/change-email", json={"email": "thief@example.com"})

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert smtp.to("thief@example.com") == []


def test_the_password_cannot_be_changed_without_the_second_factor(app: Flask, clock: Clock) -> None:
    owner, _ = ann_with_totp(app, clock)
    other = browser(app)
    sign_in_client(other, signed_in_user(owner), fresh=True, mfa=False)

    answer = other.post(
        "/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "a stolen new passphrase"},
    )

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert password_step(browser(app)).json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"  # old one


def test_a_provider_cannot_be_unlinked_from_a_stale_session(app: Flask, oidc: OIDCProvider) -> None:
    client = browser(app)
    user_id = sign_up(client)["user"]["user_id"]
    corp_round_trip(client, oidc)
    sign_in_client(client, user_id, fresh=False)

    answer = client.post("/auth/oauth/corp/unlink", json={})

    assert answer.status_code == 401
    assert keys_of(app, user_id) == [f"email:{ANN}", "corp:mallory"]


def test_the_code_makes_a_stale_session_fresh_enough_to_change_a_way_in(
    app: Flask, clock: Clock
) -> None:
    owner, secret = ann_with_totp(app, clock)
    clock.advance(11 * MINUTE)
    assert owner.post("/auth/passkeys/register/options", json={}).status_code == 401

    owner.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert owner.post("/auth/passkeys/register/options", json={}).status_code == 200


# -- the owner is told -------------------------------------------------------------------------


def test_turning_the_second_factor_on_and_off_tells_the_owner(
    app: Flask, smtp: MailServer, clock: Clock
) -> None:
    owner, _ = ann_with_totp(app, clock)

    owner.delete("/auth/two-factor")

    assert subjects(smtp)[-2:] == [
        "Two-factor authentication is on",
        "Two-factor authentication is off",
    ]


def test_making_new_recovery_codes_tells_the_owner(
    app: Flask, smtp: MailServer, clock: Clock
) -> None:
    owner, _ = ann_with_totp(app, clock)

    made = owner.post("/auth/two-factor/recovery-codes", json={})

    assert made.status_code == 200
    assert subjects(smtp)[-1] == "New recovery codes for your account"
    assert "the old ones no longer work" in text_of(smtp.to(ANN)[-1])


def test_unlinking_a_provider_tells_the_owner(
    app: Flask, oidc: OIDCProvider, smtp: MailServer
) -> None:
    client = browser(app)
    sign_up(client)
    corp_round_trip(client, oidc)

    assert client.post("/auth/oauth/corp/unlink", json={}).status_code == 200

    assert subjects(smtp)[-1] == "A way to sign in was removed from your account"
    assert "Corp was unlinked" in text_of(smtp.to(ANN)[-1])


def test_adding_a_passkey_tells_the_owner_by_its_name(app: Flask, smtp: MailServer) -> None:
    client = browser(app)
    sign_up(client)

    added = register(client, SoftAuthenticator(), "Work laptop")

    assert added.status_code == 201
    assert subjects(smtp) == ["A passkey was added to your account"]
    assert "“Work laptop” was added" in text_of(smtp.to(ANN)[-1])


def test_removing_a_passkey_tells_the_owner_by_its_name(app: Flask, smtp: MailServer) -> None:
    client = browser(app)
    sign_up(client)
    passkey = register(client, SoftAuthenticator(), "Work laptop").json["passkey"]

    removed = client.delete(f"/auth/passkeys/{passkey['id']}", headers=JSON)

    assert removed.status_code == 200
    assert subjects(smtp)[-1] == "A passkey was removed from your account"
    assert "“Work laptop” was removed" in text_of(smtp.to(ANN)[-1])


def test_a_changed_password_mail_names_the_device_and_links_to_the_devices_page(
    app: Flask, smtp: MailServer
) -> None:
    client = browser(app)
    sign_up(client)

    client.post(
        "/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )

    body = text_of(smtp.to(ANN)[-1])
    assert "Device: Test Browser/1.0" in body and "http://localhost/auth/devices" in body


def test_a_sign_in_from_a_new_browser_tells_the_owner(app: Flask, smtp: MailServer) -> None:
    sign_up(browser(app))

    password_step(browser(app, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"))

    assert subjects(smtp) == [NEW_SIGN_IN]
    assert "Device: Firefox on Linux" in text_of(smtp.to(ANN)[-1])


def test_a_sign_in_from_a_browser_that_signed_in_before_tells_nobody(
    app: Flask, smtp: MailServer
) -> None:
    client = browser(app)
    sign_up(client)
    client.post("/auth/sign-out")

    assert password_step(client).status_code == 200

    assert subjects(smtp) == []


def test_signing_up_is_no_new_sign_in(app: Flask, smtp: MailServer) -> None:
    sign_up(browser(app))

    assert subjects(smtp) == []


def test_a_password_alone_earns_no_device_cookie_when_a_second_factor_is_on(
    app: Flask, smtp: MailServer, clock: Clock
) -> None:
    _, secret = ann_with_totp(app, clock)
    thief = browser(app)

    password_step(thief)
    assert thief.get_cookie("lucia_device") is None
    thief.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert thief.get_cookie("lucia_device") is not None
    assert subjects(smtp)[-1] == NEW_SIGN_IN
