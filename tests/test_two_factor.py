"""TOTP with recovery codes, pending sign-ins and ``mfa_required`` (DESIGN §15), end to end
through the test client with codes computed by pyotp on the suite's clock."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import current_session, current_user, login_required, mfa_required, signals
from flask_lucia.testing import sign_in_client

from .conftest import ORIGIN, PASSWORD, AppFactory, Clock, cookie, sign_up

PENDING = "lucia_two_factor"


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """The suite's app with the views of ``with_views``."""
    return with_views(make_app())


def with_views(app: Flask) -> Flask:
    """``app`` with views that show who is signed in and one that needs MFA."""

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return {
            "user": current_user.user_id if current_user else None,
            "mfa": current_session.mfa if current_user else None,
        }

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user_id": current_user.user_id}

    @app.get("/vault")
    @mfa_required
    def vault() -> dict[str, Any]:
        return {"ok": True}

    return app


def browser(app: Flask, user_agent: str = "Test Browser/1.0") -> FlaskClient:
    """A new test client that sends this site's Origin and a user agent, as a browser."""
    client = app.test_client()
    client.environ_base.update(HTTP_ORIGIN=ORIGIN, HTTP_USER_AGENT=user_agent)
    return client


def code_at(secret: str, clock: Clock, steps: int = 0) -> str:
    """The TOTP code of ``secret`` at the suite's time, ``steps`` time steps away."""
    return str(pyotp.TOTP(secret).at(int(clock.now) + 30 * steps))


def turn_on(client: FlaskClient, clock: Clock) -> tuple[str, list[str]]:
    """Set TOTP up for the client's (fresh) user; the secret and the recovery codes. The
    clock then moves on a step, so the next code is a new one."""
    secret = client.post("/auth/two-factor", json={}).json["secret"]
    answer = client.post(
        "/auth/two-factor", json={"code": code_at(secret, clock), "secret": secret}
    )
    assert answer.status_code == 200, answer.json
    clock.advance(30)
    return secret, answer.json["recovery_codes"]


def user_with_totp(app: Flask, clock: Clock) -> tuple[str, list[str]]:
    """Ann, signed up with TOTP on; her secret and recovery codes."""
    client = browser(app)
    sign_up(client)
    return turn_on(client, clock)


def password_step(client: FlaskClient) -> Any:
    """The password step of a JSON sign-in as Ann."""
    return client.post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
    )


def status(client: FlaskClient) -> Any:
    """The JSON status of the client's two-factor setup."""
    return client.get("/auth/two-factor", headers={"Accept": "application/json"}).json


def rows(app: Flask, table: str) -> list[tuple[Any, ...]]:
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(getattr(storage.schema, table)))]


# -- setup ---------------------------------------------------------------------------------


def test_setup_answers_a_secret_of_at_least_128_bits_and_its_otpauth_uri(
    client: FlaskClient,
) -> None:
    sign_up(client)

    answer = client.post("/auth/two-factor", json={})

    secret, uri = answer.json["secret"], answer.json["otpauth_uri"]
    assert answer.status_code == 200
    assert re.fullmatch("[A-Z2-7]+", secret) and len(secret) * 5 >= 128
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    assert "ann%40example.com" in uri


def test_setup_stores_nothing_until_a_code_confirms_it(app: Flask, client: FlaskClient) -> None:
    sign_up(client)

    client.post("/auth/two-factor", json={})

    assert rows(app, "totp") == [] and status(client)["enabled"] is False


def test_setup_needs_a_session(client: FlaskClient) -> None:
    answer = client.post("/auth/two-factor", json={})
    assert answer.status_code == 401 and answer.json["error"] == "AUTH_NOT_AUTHENTICATED"


def test_setup_needs_a_fresh_session(app: Flask, client: FlaskClient, clock: Clock) -> None:
    user = sign_up(client)["user"]
    stale = browser(app)
    sign_in_client(stale, user["user_id"], fresh=False)

    answer = stale.post("/auth/two-factor", json={})

    assert answer.status_code == 401 and answer.json["fresh_required"] is True


def test_a_first_code_turns_totp_on_and_answers_ten_recovery_codes(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    secret = client.post("/auth/two-factor", json={}).json["secret"]

    answer = client.post(
        "/auth/two-factor", json={"code": code_at(secret, clock), "secret": secret}
    )

    codes = answer.json["recovery_codes"]
    assert answer.status_code == 200
    assert len(codes) == 10 and len(set(codes)) == 10 and all(isinstance(c, str) for c in codes)
    assert status(client) == {"enabled": True, "recovery_codes_left": 10}


def test_confirming_makes_the_current_session_count_as_mfa(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    turn_on(client, clock)
    assert client.get("/whoami").json["mfa"] is True


def test_a_wrong_first_code_turns_nothing_on(app: Flask, client: FlaskClient, clock: Clock) -> None:
    sign_up(client)
    secret = client.post("/auth/two-factor", json={}).json["secret"]
    wrong = code_at(secret, clock, steps=5)

    answer = client.post("/auth/two-factor", json={"code": wrong, "secret": secret})

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_CODE"
    assert rows(app, "totp") == [] and rows(app, "recovery_codes") == []


@pytest.mark.parametrize("secret", ["JBSWY3DPEHPK3PXP", "not base32!" * 3, 42, None])
def test_a_secret_under_128_bits_or_not_base32_is_refused(
    app: Flask, client: FlaskClient, secret: Any
) -> None:
    sign_up(client)

    answer = client.post("/auth/two-factor", json={"code": "123456", "secret": secret})

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_REQUEST"
    assert rows(app, "totp") == []


def test_setting_up_twice_is_409(client: FlaskClient, clock: Clock) -> None:
    sign_up(client)
    turn_on(client, clock)

    again = client.post("/auth/two-factor", json={})

    assert again.status_code == 409


def test_recovery_codes_are_stored_as_digests(app: Flask, clock: Clock) -> None:
    _, codes = user_with_totp(app, clock)

    stored = repr(rows(app, "recovery_codes"))

    assert len(rows(app, "recovery_codes")) == 10
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)


def test_the_setup_page_shows_an_inline_svg_qr_code_and_the_key(client: FlaskClient) -> None:
    sign_up(client)

    page = client.get("/auth/two-factor", headers={"Accept": "text/html"})

    html = page.get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
    assert page.status_code == 200 and "<svg" in html and secret is not None
    assert f'value="{secret.group(1)}"' in html  # the form posts it back with the first code


def test_the_setup_form_turns_totp_on_and_shows_the_codes_once(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    html = client.get("/auth/two-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]

    page = client.post(
        "/auth/two-factor",
        data={"code": code_at(secret, clock), "secret": secret, "csrf_token": token},
    )

    shown = re.findall(r"<code>([a-z2-9-]{19})</code>", page.get_data(as_text=True))
    again = client.get("/auth/two-factor").get_data(as_text=True)
    assert page.status_code == 200 and len(shown) == 10
    assert not any(code in again for code in shown) and "10 unused recovery codes" in again


# -- turning it off and new codes ----------------------------------------------------------


def test_turning_totp_off_removes_the_secret_and_the_codes(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    turn_on(client, clock)

    answer = client.delete("/auth/two-factor")

    assert answer.status_code == 200 and answer.json == {"enabled": False}
    assert rows(app, "totp") == [] and rows(app, "recovery_codes") == []
    assert password_step(browser(app)).status_code == 200  # the password is enough again


def test_turning_totp_off_needs_a_fresh_session_that_proved_the_code(
    app: Flask, clock: Clock
) -> None:
    user_with_totp(app, clock)
    stale = browser(app)
    user_id = rows(app, "totp")[0][0]
    sign_in_client(stale, user_id, fresh=False, mfa=True)

    answer = stale.post("/auth/two-factor/disable", json={})

    assert answer.status_code == 401
    assert answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"  # a code makes it fresh
    assert len(rows(app, "totp")) == 1


def test_turning_totp_off_from_a_fresh_session_without_the_code_is_refused(
    app: Flask, clock: Clock
) -> None:
    user_with_totp(app, clock)
    fresh = browser(app)
    sign_in_client(fresh, rows(app, "totp")[0][0], fresh=True, mfa=False)

    answer = fresh.post("/auth/two-factor/disable", json={})

    assert answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert len(rows(app, "totp")) == 1


def test_new_recovery_codes_replace_the_old_ones(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    _, old = turn_on(client, clock)

    new = client.post("/auth/two-factor/recovery-codes", json={}).json["recovery_codes"]

    pending = browser(app)
    password_step(pending)
    refused = pending.post("/auth/two-factor/verify", json={"code": old[0]})
    accepted = pending.post("/auth/two-factor/verify", json={"code": new[0]})
    assert len(new) == 10 and not set(new) & set(old)
    assert refused.status_code == 400 and accepted.status_code == 200


# -- pending sign-in ---------------------------------------------------------------------


def test_with_totp_a_right_password_answers_second_factor_required_and_no_session(
    app: Flask, clock: Clock
) -> None:
    user_with_totp(app, clock)
    client = browser(app)

    answer = password_step(client)

    assert answer.status_code == 401
    assert answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert answer.json["verify"] == "/auth/two-factor/verify"
    assert cookie(client, "lucia_access_token") is None
    assert cookie(client, "lucia_refresh_token") is None
    assert client.get("/auth/session").status_code == 401


def test_the_pending_cookie_is_httponly_and_lives_at_most_5_minutes(
    app: Flask, clock: Clock
) -> None:
    user_with_totp(app, clock)

    answer = password_step(browser(app))

    header = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith(PENDING))
    max_age = int(re.search(r"Max-Age=(\d+)", header).group(1))  # type: ignore[union-attr]
    assert "HttpOnly" in header and 0 < max_age <= 300


def test_a_pending_sign_in_is_stored_as_a_digest(app: Flask, clock: Clock) -> None:
    user_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    stored = rows(app, "pending_sign_ins")

    token = cookie(client, PENDING)
    assert token and len(stored) == 1 and token not in repr(stored)


def test_a_pending_sign_in_opens_nothing_protected(app: Flask, clock: Clock) -> None:
    user_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    assert client.get("/private", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/whoami").json == {"user": None, "mfa": None}


def test_a_totp_code_turns_the_pending_sign_in_into_an_mfa_session(
    app: Flask, clock: Clock
) -> None:
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    answer = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert answer.status_code == 200 and answer.json["user"]["username"] is None
    assert client.get("/whoami").json["mfa"] is True
    assert client.get("/vault").status_code == 200
    assert cookie(client, PENDING) is None and rows(app, "pending_sign_ins") == []


def test_a_replayed_code_is_refused(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    code = code_at(secret, clock)
    first = browser(app)
    password_step(first)
    assert first.post("/auth/two-factor/verify", json={"code": code}).status_code == 200
    second = browser(app)
    password_step(second)

    replayed = second.post("/auth/two-factor/verify", json={"code": code})

    assert replayed.status_code == 400 and replayed.json["error"] == "AUTH_INVALID_CODE"
    assert second.get("/whoami").json["user"] is None


def test_a_code_of_an_earlier_step_than_one_used_is_refused(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    first = browser(app)
    password_step(first)
    later = first.post("/auth/two-factor/verify", json={"code": code_at(secret, clock, 1)})
    assert later.status_code == 200
    second = browser(app)
    password_step(second)

    earlier = second.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert earlier.status_code == 400


@pytest.mark.parametrize(("steps", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)])
def test_one_step_of_clock_drift_is_accepted_two_are_not(
    app: Flask, clock: Clock, steps: int, accepted: bool
) -> None:
    secret, _ = user_with_totp(app, clock)
    clock.advance(60)  # past the step the setup used, either way
    client = browser(app)
    password_step(client)

    answer = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock, steps)})

    assert (answer.status_code == 200) is accepted


def test_a_recovery_code_works_once(app: Flask, clock: Clock) -> None:
    _, codes = user_with_totp(app, clock)
    first = browser(app)
    password_step(first)
    used = first.post("/auth/two-factor/verify", json={"code": codes[3].upper().replace("-", " ")})
    second = browser(app)
    password_step(second)

    again = second.post("/auth/two-factor/verify", json={"code": codes[3]})

    assert used.status_code == 200 and first.get("/whoami").json["mfa"] is True
    assert again.status_code == 400 and again.json["error"] == "AUTH_INVALID_CODE"
    assert len(rows(app, "recovery_codes")) == 9


def test_wrong_codes_are_throttled_per_account(make_app: AppFactory, clock: Clock) -> None:
    app = make_app(LUCIA_THROTTLE_FREE_ATTEMPTS=3)
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    wrong = code_at(secret, clock, steps=10)

    answers = [client.post("/auth/two-factor/verify", json={"code": wrong}) for _ in range(3)]
    right = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})
    elsewhere = browser(app, "Another Browser/2.0")
    password_step(elsewhere)
    from_elsewhere = elsewhere.post(
        "/auth/two-factor/verify", json={"code": code_at(secret, clock)}
    )

    assert [a.status_code for a in answers] == [400, 400, 400]
    assert right.status_code == 429 and right.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"
    assert int(right.headers["Retry-After"]) >= 1
    assert from_elsewhere.status_code == 429  # the budget is the account's, not the browser's
    clock.advance(2)
    late = elsewhere.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})
    assert late.status_code == 200


def test_a_pending_sign_in_expires(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    clock.advance(301)

    answer = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_NOT_AUTHENTICATED"
    assert client.get("/whoami").json["user"] is None and cookie(client, PENDING) is None


def test_a_pending_sign_in_is_bound_to_its_browser(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    other = browser(app, "Another Browser/2.0")
    other.set_cookie(PENDING, cookie(client, PENDING) or "")

    answer = other.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert answer.status_code == 401 and other.get("/whoami").json["user"] is None


def test_verify_without_a_pending_sign_in_or_session_is_401(app: Flask) -> None:
    answer = browser(app).post("/auth/two-factor/verify", json={"code": "123456"})
    assert answer.status_code == 401


def test_verify_from_another_site_is_403(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    answer = client.post(
        "/auth/two-factor/verify",
        json={"code": code_at(secret, clock)},
        headers={"Origin": "https://evil.example"},
    )

    assert answer.status_code == 403 and client.get("/whoami").json["user"] is None


@pytest.mark.parametrize("body", [{}, {"code": 123456}, {"code": ""}, [], "123456"])
def test_verify_with_a_malformed_body_is_400(app: Flask, clock: Clock, body: Any) -> None:
    user_with_totp(app, clock)
    client = browser(app)
    password_step(client)

    answer = client.post("/auth/two-factor/verify", json=body)

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_REQUEST"


def test_the_sign_in_form_goes_to_the_verify_page_and_then_to_next(
    make_app: AppFactory, clock: Clock
) -> None:
    app = with_views(make_app(WTF_CSRF_ENABLED=False))
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    form = {"identifier": "ann@example.com", "password": PASSWORD, "next": "/private"}

    step1 = client.post("/auth/sign-in", data=form)
    page = client.get(step1.headers["Location"])
    step2 = client.post(
        "/auth/two-factor/verify", data={"code": code_at(secret, clock), "next": "/private"}
    )

    assert step1.status_code == 303
    assert step1.headers["Location"] == "/auth/two-factor/verify?next=/private"
    assert page.status_code == 200 and 'value="/private"' in page.get_data(as_text=True)
    assert step2.status_code == 303 and step2.headers["Location"] == "/private"
    assert client.get("/whoami").json["mfa"] is True


def test_a_wrong_code_on_the_verify_page_says_so(make_app: AppFactory, clock: Clock) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    client.post("/auth/sign-in", data={"identifier": "ann@example.com", "password": PASSWORD})

    page = client.post("/auth/two-factor/verify", data={"code": code_at(secret, clock, 9)})

    assert page.status_code == 400 and "already used" in page.get_data(as_text=True)


# -- mfa_required and step-up ----------------------------------------------------------


def test_mfa_required_answers_json_401_for_a_session_without_mfa(client: FlaskClient) -> None:
    sign_up(client)

    answer = client.get("/vault", headers={"Accept": "application/json"})

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"


def test_mfa_required_sends_a_browser_to_the_verify_page(client: FlaskClient) -> None:
    sign_up(client)

    answer = client.get("/vault?x=1")

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/auth/two-factor/verify?next=/vault?x%3D1"


def test_mfa_required_without_a_session_is_401(client: FlaskClient) -> None:
    answer = client.get("/vault", headers={"Accept": "application/json"})
    assert answer.status_code == 401 and answer.json["error"] == "AUTH_NOT_AUTHENTICATED"


def test_a_code_makes_a_signed_in_session_count_as_mfa(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    sign_in_client(client, rows(app, "totp")[0][0], fresh=False)
    assert client.get("/whoami").json["mfa"] is False

    answer = client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})

    assert answer.status_code == 200 and answer.json == {"mfa": True, "aal": 2, "trusted": False}
    assert client.get("/whoami").json["mfa"] is True and client.get("/vault").status_code == 200


def test_the_mfa_flag_survives_a_refresh(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)
    client = browser(app)
    password_step(client)
    client.post("/auth/two-factor/verify", json={"code": code_at(secret, clock)})
    client.delete_cookie("lucia_access_token")

    assert client.get("/whoami").json["mfa"] is True


def test_the_request_path_is_still_one_query_with_mfa(
    app: Flask, clock: Clock, queries: list[str]
) -> None:
    client = browser(app)
    sign_up(client)
    queries.clear()

    client.get("/whoami")

    assert len(queries) == 1


# -- support, signals, config ------------------------------------------------------------


def test_reset_two_factor_turns_totp_off_for_a_user(app: Flask, clock: Clock) -> None:
    user_with_totp(app, clock)

    result = app.test_cli_runner().invoke(
        args=["lucia", "reset-two-factor", "email:ann@example.com"]
    )

    assert result.exit_code == 0, result.output
    assert "turned off TOTP" in result.output and "deleted 0 passkey(s)" in result.output
    assert rows(app, "totp") == [] and password_step(browser(app)).status_code == 200


def test_reset_two_factor_of_an_unknown_user_fails_with_a_message(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["lucia", "reset-two-factor", "nobody"])
    assert result.exit_code == 1 and "no user" in result.output


def test_turning_totp_on_and_off_sends_one_signal_each(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    seen: list[str] = []
    on = signals.two_factor_enabled.connect_via(app)(lambda _app, user: seen.append("on"))
    off = signals.two_factor_disabled.connect_via(app)(lambda _app, user: seen.append("off"))
    sign_up(client)

    turn_on(client, clock)
    client.delete("/auth/two-factor")
    client.delete("/auth/two-factor")  # off already: no second signal

    assert seen == ["on", "off"]
    del on, off


@pytest.mark.parametrize("ttl", [0, 301, "5 minutes"])
def test_a_pending_lifetime_over_5_minutes_is_refused_at_start_up(
    make_app: AppFactory, ttl: Any
) -> None:
    with pytest.raises((ValueError, TypeError), match="LUCIA_TWO_FACTOR_TTL"):
        make_app(LUCIA_TWO_FACTOR_TTL=ttl)


def test_a_pending_cookie_named_like_a_token_cookie_is_refused(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match="LUCIA_TWO_FACTOR_COOKIE_NAME"):
        make_app(LUCIA_TWO_FACTOR_COOKIE_NAME="lucia_access_token")
