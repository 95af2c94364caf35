"""Signing in with a code sent by email (DESIGN §23) end to end through the test client and
a real SMTP server: the whole flow from another browser, replay, expiry, the five-try
limit, parallel guesses, throttling, and unknown addresses answered alike in words and
in time."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import LuciaError
from flask_lucia.email.code_flow import CODE_ALPHABET, SignInCodes

from .conftest import ORIGIN, PASSWORD, AppFactory, Clock, cookie
from .mailserver import MailServer, flows_app, text_of
from .test_forms import csrf_token
from .test_reset import DEFAULT_LIMITS, assert_same_time

ANN, BOB = "ann@example.com", "bob@example.com"
SENT = "If an account uses this address, a code to sign in is on its way."
_CODE = re.compile(r"\b([2-9A-Z]{4})-([2-9A-Z]{4})\b")


@pytest.fixture
def app(make_app: AppFactory, smtp: MailServer) -> Flask:
    """Codes on, mail limits off; ann has an account (and no verification mail)."""
    app = flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off", LUCIA_EMAIL_CODE_SIGN_IN=True)
    with app.app_context():
        app.lucia.create_user("email", ANN, password=PASSWORD)  # type: ignore[attr-defined]
    return app


def browser(app: Flask, address: str = "127.0.0.1") -> FlaskClient:
    """A browser of its own (no cookies of another) on the app's origin."""
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return browser(app)


def ask(client: FlaskClient, email: str = ANN) -> Any:
    return client.post("/auth/sign-in/code", json={"email": email})


def verify(client: FlaskClient, code: str, email: str = ANN, **extra: Any) -> Any:
    return client.post("/auth/sign-in/code/verify", json={"email": email, "code": code, **extra})


def code_for(smtp: MailServer, email: str = ANN) -> str:
    """The code in the newest mail to ``email``, as shown: ``ABCD-EFGH``."""
    found = _CODE.findall(text_of(smtp.to(email)[-1]))
    assert len(found) == 1, found
    return "-".join(found[0])


def wrong(code: str) -> str:
    """Another code of the same shape."""
    return ("3" if code[0] != "3" else "4") + code[1:]


def code_rows(app: Flask) -> list[Any]:
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        return list(conn.execute(sa.select(storage.email_codes)))


def signed_in(client: FlaskClient) -> bool:
    return client.get("/private").status_code == 200


# -- asking -----------------------------------------------------------------------------


def test_a_known_address_gets_a_code_in_two_groups_of_four_with_its_expiry(
    client: FlaskClient, smtp: MailServer
) -> None:
    answer = ask(client)
    assert answer.status_code == 200 and answer.json == {"message": SENT}
    [message] = smtp.to(ANN)
    assert message["Subject"] == "Your sign-in code"
    code = code_for(smtp)
    assert set(code.replace("-", "")) <= set(CODE_ALPHABET) and len(code) == 9
    assert "It works once, for 10 minutes." in text_of(message)
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "font:700 32px" in html.get_content()  # type: ignore[attr-defined]


def test_an_unknown_address_gets_the_same_answer_a_note_without_a_code_and_no_account(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    known, unknown = ask(client, ANN), ask(client, BOB)
    assert (known.status_code, known.get_data()) == (unknown.status_code, unknown.get_data())
    [note] = smtp.to(BOB)
    assert "no account uses this address" in text_of(note)
    assert not _CODE.search(text_of(note))
    with app.app_context(), pytest.raises(LuciaError):
        app.lucia.get_user_by_provider_id("email", BOB)  # type: ignore[attr-defined]
    rows = sorted((row.email, row.user_id is None) for row in code_rows(app))
    assert rows == [(ANN, False), (BOB, True)]  # bob's row is for nobody: nothing spends it


def test_known_and_unknown_addresses_take_the_same_time(client: FlaskClient) -> None:
    """Measured as the reset flow's are: both paths look one address up, render one
    mail, count it and store a code row in one transaction, and hand the mail to the
    SMTP server."""
    assert_same_time(lambda email: ask(client, email), ANN, BOB)


@pytest.mark.parametrize("email", ["not an address", "Ann <ann@example.com>", "a,b@example.com"])
def test_anything_but_one_plain_address_is_refused_without_a_mail(
    client: FlaskClient, smtp: MailServer, email: str
) -> None:
    answer = ask(client, email)
    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_REQUEST"
    assert smtp.messages == []


def test_only_a_keyed_digest_of_the_code_is_stored(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    ask(client)
    code = code_for(smtp).replace("-", "")
    [row] = code_rows(app)
    assert code not in repr(tuple(row))
    import hashlib

    assert row.digest != hashlib.sha256(code.encode()).hexdigest()
    assert row.digest != hashlib.sha256(f"{ANN}\n{code}".encode()).hexdigest()


# -- signing in -------------------------------------------------------------------------


def test_the_code_signs_in_from_another_browser(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    ask(client)
    other = browser(app, "192.0.2.7")
    answer = verify(other, code_for(smtp))
    assert answer.status_code == 200 and "session" in answer.json
    assert signed_in(other) and not signed_in(client)
    assert cookie(other, "lucia_access_token")


def test_the_code_is_accepted_without_the_separator_and_in_any_case(
    client: FlaskClient, smtp: MailServer
) -> None:
    ask(client)
    typed = " " + code_for(smtp).replace("-", "").lower() + " "
    assert verify(client, typed).status_code == 200


def test_a_spent_code_is_invalid(client: FlaskClient, smtp: MailServer, app: Flask) -> None:
    ask(client)
    code = code_for(smtp)
    assert verify(client, code).status_code == 200
    replay = verify(browser(app), code)
    assert replay.status_code == 400 and replay.json["error"] == "AUTH_INVALID_CODE"


def test_an_expired_code_is_invalid(client: FlaskClient, smtp: MailServer, clock: Clock) -> None:
    ask(client)
    clock.advance(600)
    answer = verify(client, code_for(smtp))
    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_CODE"


def test_a_code_just_inside_its_ttl_works(
    client: FlaskClient, smtp: MailServer, clock: Clock
) -> None:
    ask(client)
    clock.advance(599)
    assert verify(client, code_for(smtp)).status_code == 200


def test_a_newer_code_replaces_the_older(client: FlaskClient, smtp: MailServer) -> None:
    ask(client)
    older = code_for(smtp)
    ask(client)
    newer = code_for(smtp)
    assert verify(client, older).json["error"] == "AUTH_INVALID_CODE"
    assert verify(client, newer).status_code == 200


def test_a_code_marks_the_address_verified(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    ask(client)
    verify(client, code_for(smtp))
    with app.app_context():
        user = app.lucia.get_user_by_provider_id("email", ANN)  # type: ignore[attr-defined]
        assert app.extensions["lucia_email"].email_verified(user.user_id) is not None


def test_the_right_code_after_four_wrong_tries_still_works(
    client: FlaskClient, smtp: MailServer
) -> None:
    ask(client)
    code = code_for(smtp)
    for _ in range(4):
        assert verify(client, wrong(code)).json["error"] == "AUTH_INVALID_CODE"
    assert verify(client, code).status_code == 200


def test_after_five_wrong_tries_the_code_is_dead(make_app: AppFactory, smtp: MailServer) -> None:
    """The throttle is off here, so what stops the sixth try is the code's own limit."""
    app = flows_app(make_app, smtp, LUCIA_EMAIL_CODE_SIGN_IN=True, LUCIA_THROTTLE=False)
    with app.app_context():
        app.lucia.create_user("email", ANN, password=PASSWORD)  # type: ignore[attr-defined]
    client = browser(app)
    ask(client)
    code = code_for(smtp)
    for _ in range(5):
        assert verify(client, wrong(code)).json["error"] == "AUTH_INVALID_CODE"
    dead = verify(client, code)
    assert dead.status_code == 400 and dead.json["error"] == "AUTH_INVALID_CODE"


def test_64_parallel_wrong_guesses_get_no_more_checks_than_the_budget(
    client: FlaskClient, smtp: MailServer, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(client)
    code = code_for(smtp)
    checked: list[str] = []
    real = SignInCodes.matches

    def matches(self: SignInCodes, stored: str, address: str, typed: str) -> bool:
        checked.append(typed)
        return real(self, stored, address, typed)

    monkeypatch.setattr(SignInCodes, "matches", matches)
    start = threading.Barrier(64)

    def guess(i: int) -> int:
        start.wait()
        guess = f"{CODE_ALPHABET[i % 32]}{CODE_ALPHABET[i // 32]}" + code.replace("-", "")[2:]
        return int(verify(browser(app, f"198.51.100.{i}"), wrong(guess)).status_code)

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(guess, range(64)))
    print(f"\ncode checks in a burst of 64 wrong guesses: {len(checked)}")
    assert len(checked) <= 5
    assert set(answers) <= {400, 429} and 200 not in answers
    assert verify(browser(app, "203.0.113.1"), code).status_code in (400, 429)


def test_wrong_codes_are_throttled_per_address(make_app: AppFactory, smtp: MailServer) -> None:
    app = flows_app(make_app, smtp, LUCIA_EMAIL_CODE_SIGN_IN=True, LUCIA_THROTTLE_FREE_ATTEMPTS=2)
    with app.app_context():
        app.lucia.create_user("email", ANN, password=PASSWORD)  # type: ignore[attr-defined]
    ask(browser(app))
    code = code_for(smtp)
    for n in range(2):
        assert verify(browser(app, f"192.0.2.{n}"), wrong(code)).status_code == 400
    throttled = verify(browser(app, "192.0.2.9"), code)
    assert throttled.status_code == 429 and throttled.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"
    assert throttled.headers["Retry-After"]


def test_wrong_codes_are_throttled_per_client(make_app: AppFactory, smtp: MailServer) -> None:
    app = flows_app(
        make_app, smtp, LUCIA_EMAIL_CODE_SIGN_IN=True, LUCIA_THROTTLE_IP_FREE_ATTEMPTS=2
    )
    with app.app_context():
        app.lucia.create_user("email", ANN, password=PASSWORD)  # type: ignore[attr-defined]
    ask(browser(app))
    code = code_for(smtp)
    for n in range(2):
        assert verify(browser(app), wrong(code), email=f"u{n}@example.com").status_code == 400
    assert verify(browser(app), code).status_code == 429


def test_a_mail_a_minute_per_address(make_app: AppFactory, smtp: MailServer) -> None:
    app = flows_app(make_app, smtp, LUCIA_EMAIL_CODE_SIGN_IN=True, **DEFAULT_LIMITS)
    assert ask(browser(app)).status_code == 200
    again = ask(browser(app, "192.0.2.2"))
    assert again.status_code == 429 and again.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"
    assert len(smtp.to(ANN)) <= 1


def test_body_transport_answers_the_tokens_and_sets_no_cookie(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    ask(client)
    api = app.test_client()  # no Origin: a script, not a browser
    answer = verify(api, code_for(smtp), transport="body")
    assert answer.status_code == 200 and answer.json["access_token"]
    assert "Set-Cookie" not in answer.headers or "lucia_access" not in answer.headers["Set-Cookie"]
    bearer = {"Authorization": f"Bearer {answer.json['access_token']}"}
    assert api.get("/private", headers=bearer).status_code == 200


def test_with_a_second_factor_the_code_makes_a_pending_sign_in_and_no_session(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    import pyotp

    totp = browser(app)
    totp.post("/auth/sign-in", json={"identifier": ANN, "password": PASSWORD})
    secret = totp.post("/auth/two-factor", json={}).json["secret"]
    totp.post("/auth/two-factor", json={"secret": secret, "code": pyotp.TOTP(secret).now()})
    ask(client)
    answer = verify(client, code_for(smtp))
    assert answer.status_code == 401 and answer.json["error"] == "AUTH_SECOND_FACTOR_REQUIRED"
    assert not signed_in(client) and cookie(client, "lucia_two_factor")


def test_a_cross_site_verify_is_refused(client: FlaskClient, smtp: MailServer) -> None:
    ask(client)
    answer = client.post(
        "/auth/sign-in/code/verify",
        json={"email": ANN, "code": code_for(smtp)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"email": ANN},
        {"email": ANN, "code": 12345678},
        {"email": ["x"], "code": "ABCD-EFGH"},
        {"email": "not an address", "code": "ABCD-EFGH"},
        {"email": ANN, "code": "O0I1-O0I1"},
        {"email": ANN, "code": "x" * 10_000},
        {"email": ANN, "code": "ABCD-EFGH", "transport": "pigeon"},
        {"email": ANN, "code": "ABCD-EFGH", "remember": "yes"},
    ],
)
def test_bad_input_answers_a_4xx_never_a_500(client: FlaskClient, body: dict[str, Any]) -> None:
    answer = client.post("/auth/sign-in/code/verify", json=body)
    assert answer.status_code == 400
    assert answer.json["error"] in ("AUTH_INVALID_REQUEST", "AUTH_INVALID_CODE")


# -- pages ------------------------------------------------------------------------------


def test_the_pages_ask_for_a_code_and_sign_in_with_it(
    client: FlaskClient, smtp: MailServer
) -> None:
    page = client.get("/auth/sign-in/code?next=/private")
    assert page.status_code == 200 and "Email me a code" in page.text
    asked = client.post(
        "/auth/sign-in/code",
        data={"csrf_token": csrf_token(page.text), "email": ANN, "next": "/private"},
    )
    assert asked.status_code == 200 and f"If an account uses {ANN}" in asked.text
    done = client.post(
        "/auth/sign-in/code/verify",
        data={
            "csrf_token": csrf_token(asked.text),
            "email": ANN,
            "code": code_for(smtp),
            "next": "/private",
        },
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/private")
    assert signed_in(client)


def test_the_code_page_says_so_when_the_code_is_wrong(
    client: FlaskClient, smtp: MailServer
) -> None:
    ask(client)
    page = client.get(f"/auth/sign-in/code/verify?email={ANN}")
    answer = client.post(
        "/auth/sign-in/code/verify",
        data={"csrf_token": csrf_token(page.text), "email": ANN, "code": wrong(code_for(smtp))},
    )
    assert answer.status_code == 400 and "This code is wrong or no longer works" in answer.text
    assert not signed_in(client)


def test_the_sign_in_page_offers_email_me_a_code_when_on(client: FlaskClient) -> None:
    assert "/auth/sign-in/code" in client.get("/auth/sign-in").text


def test_codes_are_off_by_default(make_app: AppFactory, smtp: MailServer) -> None:
    app = flows_app(make_app, smtp)
    client = browser(app)
    assert "/auth/sign-in/code" not in client.get("/auth/sign-in").text
    assert ask(client).status_code == 404
    assert verify(client, "ABCD-EFGH").status_code == 404
    assert smtp.messages == []


# -- storage ----------------------------------------------------------------------------


def test_a_database_made_before_codes_gets_their_table(
    app: Flask, make_app: AppFactory, smtp: MailServer
) -> None:
    storage = app.extensions["lucia"].storage
    storage.email_codes.drop(storage.engine)
    url = storage.engine.url.render_as_string(hide_password=False)
    again = flows_app(
        make_app,
        smtp,
        LUCIA_EMAIL_CODE_SIGN_IN=True,
        LUCIA_DATABASE_URL=url,
        LUCIA_TABLE_PREFIX=app.config.get("LUCIA_TABLE_PREFIX", "lucia_"),
    )
    client = browser(again)
    assert ask(client).status_code == 200
    assert verify(client, code_for(smtp)).status_code == 200


def test_deleting_the_user_deletes_its_code(
    client: FlaskClient, smtp: MailServer, app: Flask
) -> None:
    ask(client)
    with app.app_context():
        user = app.lucia.get_user_by_provider_id("email", ANN)  # type: ignore[attr-defined]
        app.lucia.delete_user(user.user_id)  # type: ignore[attr-defined]
    assert code_rows(app) == []
