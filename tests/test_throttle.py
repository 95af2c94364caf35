"""The sign-in throttle under attack: parallel guesses, lock-out, and what it counts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from flask_lucia import Lucia
from flask_lucia.passwords import Verdict
from flask_lucia.throttle import address_key

from .conftest import ORIGIN, PASSWORD

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
        auth.storage.update_user(user_id, {"hashed_password": "md5$0123456789abcdef"})
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
