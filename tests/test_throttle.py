"""The sign-in throttle under attack: parallel guesses, lock-out, and what it counts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia
from flask_lucia.core.passwords import Verdict
from flask_lucia.core.throttle import address_key

from .conftest import ORIGIN, PASSWORD, Clock, cookie

BURST = 64


def guess(app: Flask, password: str, address: str, identifier: str = "ann@example.com") -> Any:
    """One JSON sign-in from a fresh browser at ``address``."""
    return app.test_client().post(
        "/auth/sign-in",
        json={"identifier": identifier, "password": password},
        environ_base={"REMOTE_ADDR": address, "HTTP_ORIGIN": ORIGIN},
    )


def count_checks(
    app: Flask, monkeypatch: pytest.MonkeyPatch, before: Callable[[str], None]
) -> list[str]:
    """The passwords the app's hasher verifies from now on; ``before`` runs ahead of each."""
    hasher = app.extensions["lucia"].hasher
    real_verify = hasher.verify
    checked: list[str] = []

    def verify(stored: str | None, password: str) -> Verdict:
        checked.append(password)
        before(password)
        return real_verify(stored, password)

    monkeypatch.setattr(hasher, "verify", verify)
    return checked


# -- item 1: parallel guesses ------------------------------------------------------------


def test_parallel_wrong_guesses_run_no_more_checks_than_the_budget(
    app: Flask, lucia: Lucia, monkeypatch: pytest.MonkeyPatch
) -> None:
    lucia.create_user("email", "ann@example.com", password=PASSWORD)
    start = threading.Barrier(BURST)
    checked = count_checks(app, monkeypatch, lambda _: None)

    def attempt(i: int) -> int:
        start.wait()
        return int(guess(app, f"wrong guess {i}", f"198.51.100.{i}").status_code)

    with ThreadPoolExecutor(BURST) as pool:
        codes = list(pool.map(attempt, range(BURST)))
    print(f"\npassword checks in a burst of {BURST} wrong guesses: {len(checked)}")
    assert len(checked) <= 5
    assert sorted(set(codes)) == [400, 429] and codes.count(400) == len(checked)


def test_the_right_password_is_refused_while_the_budget_is_spent_in_flight(
    app: Flask, lucia: Lucia, monkeypatch: pytest.MonkeyPatch
) -> None:
    lucia.create_user("email", "ann@example.com", password=PASSWORD)
    in_flight, release = threading.Semaphore(0), threading.Event()

    def hold_wrong_guesses(password: str) -> None:
        if password != PASSWORD:
            in_flight.release()
            release.wait(30)

    checked = count_checks(app, monkeypatch, hold_wrong_guesses)
    with ThreadPoolExecutor(5) as pool:
        wrong = [pool.submit(guess, app, f"wrong {i}", f"198.51.100.{i}") for i in range(5)]
        try:
            for _ in range(5):  # five wrong guesses are being checked, none has answered
                assert in_flight.acquire(timeout=30)
            right = guess(app, PASSWORD, "203.0.113.1")
        finally:
            release.set()
        assert [f.result().status_code for f in wrong] == [400] * 5
    assert right.status_code == 429 and right.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"
    assert PASSWORD not in checked


def test_a_success_gives_back_the_attempt_it_counted_against_its_address(make_app: Any) -> None:
    app = make_app(LUCIA_THROTTLE_IP_FREE_ATTEMPTS=3)
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    for _ in range(5):
        assert guess(app, PASSWORD, "203.0.113.5").status_code == 200
    codes = [guess(app, "wrong", "203.0.113.5", f"u{i}@example.com").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]


def test_the_statement_admits_exactly_when_the_policy_has_no_wait(make_app: Any) -> None:
    app = make_app(
        LUCIA_THROTTLE_FREE_ATTEMPTS=3,
        LUCIA_THROTTLE_MAX_FAILURES=12,
        LUCIA_THROTTLE_MAX_DELAY=20,  # 1, 2, 4, 8, 16 s, then 20 s
    )
    throttle = app.extensions["lucia"].throttle
    storage, policy, now = throttle.storage, throttle.identifier, 10**12
    table = storage.throttle
    disagreements = []
    with app.app_context():
        for failures in range(15):
            for since in (0, 999, 1000, 1999, 2000, 15_999, 16_000, 19_999, 20_000, 10**6):
                for age in (since, 3_599_999, 3_600_000):
                    row = (failures, now - age, now - since)
                    with storage.write() as conn:
                        conn.execute(table.delete())
                        conn.execute(
                            table.insert().values(
                                key="id:k",
                                failures=failures,
                                window_start=row[1],
                                last_failure=row[2],
                            )
                        )
                    admitted = storage.reserve(
                        {"id:k": policy.admits(table.c, now)}, now, policy.window
                    )
                    if admitted != (policy.wait(*row, now) == 0):
                        disagreements.append((row, admitted))
    assert disagreements == []


# -- item 13: what the throttle counts, and how alike failures look ------------------------


def outdated_user(app: Flask) -> str:
    """Ann, whose stored hash is in a format no verifier here reads; her user id."""
    auth = app.extensions["lucia"]
    with app.app_context():
        user_id: str = auth.create_user("email", "ann@example.com", password=PASSWORD).user_id
        auth.storage.set_key_password("email:ann@example.com", "md5$0123456789abcdef")
    return user_id


def test_an_unverifiable_hash_answers_like_a_wrong_password(app: Flask) -> None:
    outdated_user(app)
    with app.app_context():
        app.lucia.create_user("email", "bob@example.com", password=PASSWORD)
    outdated = guess(app, PASSWORD, "203.0.113.1")
    wrong = guess(app, "wrong password", "203.0.113.2", "bob@example.com")
    unknown = guess(app, "wrong password", "203.0.113.3", "nobody@example.com")
    assert outdated.status_code == wrong.status_code == unknown.status_code == 400
    assert outdated.json == wrong.json == unknown.json
    assert outdated.json["error"] == "AUTH_INVALID_PASSWORD"


def test_an_unverifiable_hash_is_counted_like_a_wrong_password(app: Flask) -> None:
    outdated_user(app)
    codes = [guess(app, PASSWORD, f"203.0.113.{i}").status_code for i in range(6)]
    assert codes == [400] * 5 + [429]


def test_an_unknown_user_is_counted_like_a_wrong_password(app: Flask) -> None:
    codes = [guess(app, "x", f"203.0.113.{i}", "nobody@example.com").status_code for i in range(6)]
    assert codes == [400] * 5 + [429]


def test_confirming_against_an_unverifiable_hash_answers_like_a_wrong_password(
    app: Flask,
) -> None:
    user_id = outdated_user(app)
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    with app.app_context():
        _, tokens = app.lucia.create_session(user_id)
    client.set_cookie("lucia_access_token", tokens.access_token)
    response = client.post("/auth/confirm", json={"password": PASSWORD})
    assert response.status_code == 400 and response.json["error"] == "AUTH_INVALID_PASSWORD"


def test_an_unverifiable_hash_costs_a_full_hash(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argon2

    outdated_user(app)
    verified: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: str) -> bool:
        verified.append(stored)
        return bool(real_verify(self, stored, password))

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    assert guess(app, PASSWORD, "203.0.113.1").status_code == 400
    assert len(verified) == 1


def test_ipv6_clients_are_throttled_per_64_network(make_app: Any) -> None:
    app = make_app(LUCIA_THROTTLE_IP_FREE_ATTEMPTS=3)
    codes = [
        guess(app, "wrong", f"2001:db8:1:2::{i + 1:x}", f"u{i}@example.com").status_code
        for i in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    assert guess(app, "wrong", "2001:db8:1:3::1", "u9@example.com").status_code == 400


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unix-socket", "unix-socket"),
    ],
)
def test_the_address_counter_is_per_ipv4_address_and_ipv6_64(address: str, key: str) -> None:
    assert address_key(address) == key


def test_an_email_is_one_counter_whatever_its_case_and_spaces(app: Flask) -> None:
    spellings = ["Ann@Example.com", "ANN@EXAMPLE.COM", " ann@example.com", "aNN@example.Com "]
    spellings += ["ann@example.com", "Ann@example.com"]
    codes = [guess(app, "x", f"203.0.113.{i}", s).status_code for i, s in enumerate(spellings)]
    assert codes == [400] * 5 + [429]


# -- item 6: the owner's browsers keep a budget of their own ---------------------------------

DEVICE = "lucia_device"


def browser(app: Flask, address: str) -> FlaskClient:
    """A browser at ``address`` that keeps its cookies."""
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=address, HTTP_ORIGIN=ORIGIN)
    return client


def sign_in(client: FlaskClient, password: str, identifier: str = "ann@example.com") -> Any:
    return client.post("/auth/sign-in", json={"identifier": identifier, "password": password})


def lock_out(app: Flask) -> FlaskClient:
    """Ann's own browser signs in once and out; then an attacker spends the identifier's
    budget (10 failures an hour, no delays) from 10 addresses. Ann's browser."""
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)  # type: ignore[attr-defined]
    owner = browser(app, "192.0.2.1")
    assert sign_in(owner, PASSWORD).status_code == 200
    owner.post("/auth/sign-out", json={})
    assert cookie(owner, DEVICE)
    codes = [guess(app, "wrong", f"198.51.100.{i}").status_code for i in range(11)]
    assert codes == [400] * 10 + [429]
    return owner


LOCKABLE = {"LUCIA_THROTTLE_FREE_ATTEMPTS": 1000, "LUCIA_THROTTLE_MAX_FAILURES": 10}


@pytest.fixture
def locked(make_app: Any) -> Flask:
    """An app whose identifier ``lock_out`` has locked; Ann's browser is ``app.owner``."""
    app = make_app(**LOCKABLE)
    app.owner = lock_out(app)  # type: ignore[attr-defined]
    return app


def test_the_owners_browser_signs_in_while_an_attacker_locks_the_identifier(
    locked: Flask,
) -> None:
    assert sign_in(browser(locked, "192.0.2.1"), PASSWORD).status_code == 429  # a new browser
    response = sign_in(locked.owner, PASSWORD)  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert locked.owner.get("/auth/session").status_code == 200  # type: ignore[attr-defined]


def test_a_forged_device_cookie_gets_no_budget(locked: Flask) -> None:
    forger = browser(locked, "198.51.100.99")
    real = cookie(locked.owner, DEVICE)  # type: ignore[attr-defined]
    assert real is not None
    nonce, timestamp, signature = real.split(".")
    for value in (f"{'A' * 24}.{timestamp}.{signature}", f"{nonce}.{timestamp}.{'x' * 43}", "x"):
        forger.set_cookie(DEVICE, value)
        assert sign_in(forger, PASSWORD).status_code == 429


def test_a_device_cookie_signed_with_another_key_gets_no_budget(
    locked: Flask, make_app: Any
) -> None:
    other = make_app(SECRET_KEY="another secret")
    with other.app_context():
        other.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    elsewhere = browser(other, "198.51.100.99")
    assert sign_in(elsewhere, PASSWORD).status_code == 200
    forger = browser(locked, "198.51.100.99")
    forger.set_cookie(DEVICE, cookie(elsewhere, DEVICE) or "")
    assert sign_in(forger, PASSWORD).status_code == 429


def test_another_accounts_device_cookie_gets_no_budget(locked: Flask) -> None:
    with locked.app_context():
        locked.lucia.create_user("email", "eve@example.com", password=PASSWORD)
    eve = browser(locked, "198.51.100.66")
    assert sign_in(eve, PASSWORD, "eve@example.com").status_code == 200
    assert cookie(eve, DEVICE)
    assert sign_in(eve, PASSWORD).status_code == 429  # Eve's cookie, Ann's account


def test_a_device_that_keeps_failing_is_throttled_on_its_own_budget(app: Flask) -> None:
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    owner = browser(app, "192.0.2.1")
    assert sign_in(owner, PASSWORD).status_code == 200
    codes = [sign_in(owner, "wrong password").status_code for _ in range(6)]
    assert codes == [400] * 5 + [429]
    assert sign_in(owner, PASSWORD).status_code == 429  # the device waits its delay
    assert sign_in(browser(app, "192.0.2.2"), PASSWORD).status_code == 200  # others do not


def test_an_expired_device_cookie_gets_no_budget(make_app: Any, clock: Clock) -> None:
    app = make_app(
        LUCIA_THROTTLE_FREE_ATTEMPTS=1000,
        LUCIA_THROTTLE_MAX_FAILURES=3,
        LUCIA_THROTTLE_WINDOW=10 * 86400,
        LUCIA_DEVICE_COOKIE_MAX_AGE=86400,
    )
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    owner = browser(app, "192.0.2.1")
    assert sign_in(owner, PASSWORD).status_code == 200
    owner.post("/auth/sign-out", json={})
    for i in range(3):
        guess(app, "wrong", f"198.51.100.{i}")
    clock.advance(86400 + 1)
    owner.set_cookie(DEVICE, cookie(owner, DEVICE) or "")  # a browser that kept it too long
    assert sign_in(owner, PASSWORD).status_code == 429


def test_sign_up_gives_the_browser_a_device_cookie(client: FlaskClient) -> None:
    client.post("/auth/sign-up", json={"identifier": "ann@example.com", "password": PASSWORD})
    assert cookie(client, DEVICE)


def test_a_browser_with_a_valid_device_cookie_gets_no_new_one(app: Flask) -> None:
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    owner = browser(app, "192.0.2.1")
    first = sign_in(owner, PASSWORD)
    assert any(c.startswith(f"{DEVICE}=") for c in first.headers.getlist("Set-Cookie"))
    again = sign_in(owner, PASSWORD)
    assert not any(c.startswith(f"{DEVICE}=") for c in again.headers.getlist("Set-Cookie"))


def test_the_device_cookie_is_httponly_secure_lax_and_lives_a_year(make_app: Any) -> None:
    app = make_app(TESTING=False, LUCIA_BASE_URL="http://localhost")
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    response = sign_in(browser(app, "192.0.2.1"), PASSWORD)
    (device,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(DEVICE)]
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=31536000"):
        assert f"; {attribute}" in device


@pytest.mark.parametrize("config", [{"SECRET_KEY": None}, {"LUCIA_DEVICE_COOKIE_NAME": None}])
def test_without_a_secret_key_or_with_them_off_there_are_no_device_cookies(
    make_app: Any, config: dict[str, Any]
) -> None:
    app = make_app(**config)
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    response = sign_in(browser(app, "192.0.2.1"), PASSWORD)
    assert response.status_code == 200
    assert len(response.headers.getlist("Set-Cookie")) == 2


def test_the_sign_in_form_gives_a_device_cookie_and_honours_it(make_app: Any) -> None:
    from .test_forms import post_form

    app = make_app(**LOCKABLE)
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    owner = browser(app, "192.0.2.1")
    signed_in = post_form(owner, "/auth/sign-in", identifier="ann@example.com", password=PASSWORD)
    assert signed_in.status_code == 303 and cookie(owner, DEVICE)
    owner.post("/auth/sign-out", json={})
    for i in range(10):
        guess(app, "wrong", f"198.51.100.{i}")
    again = post_form(owner, "/auth/sign-in", identifier="ann@example.com", password=PASSWORD)
    assert again.status_code == 303


def test_authenticate_user_in_a_request_honours_and_gives_device_cookies(make_app: Any) -> None:
    app = make_app(**LOCKABLE)

    @app.post("/my-sign-in")
    def my_sign_in() -> dict[str, str]:
        user = app.lucia.authenticate_user("email", "ann@example.com", PASSWORD)  # type: ignore[attr-defined]
        return {"user_id": user.user_id}

    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)  # type: ignore[attr-defined]
    owner = browser(app, "192.0.2.1")
    assert owner.post("/my-sign-in").status_code == 200 and cookie(owner, DEVICE)
    for i in range(10):
        guess(app, "wrong", f"198.51.100.{i}")
    assert owner.post("/my-sign-in").status_code == 200
    assert browser(app, "203.0.113.8").post("/my-sign-in").status_code == 429
