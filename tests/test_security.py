"""Security requirements, one test each, named for the ASVS item they prove where there is one."""

from __future__ import annotations

import math
import sqlite3
import statistics
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia, LuciaError, current_user, login_required
from flask_lucia.core.tokens import TOKEN_LENGTH

from .conftest import ORIGIN, PASSWORD, Clock, cookie, sign_up, unique_prefix

ACCESS, REFRESH = "lucia_access_token", "lucia_refresh_token"


def browser(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def sign_in(
    client: FlaskClient, password: str = PASSWORD, identifier: str = "ann@example.com"
) -> Any:
    return client.post("/auth/sign-in", json={"identifier": identifier, "password": password})


def fail(lucia: Lucia, identifier: str = "ann@example.com") -> LuciaError:
    with pytest.raises(LuciaError) as excinfo:
        lucia.authenticate_user("email", identifier, "wrong password")
    return excinfo.value


# -- V3.2 session binding ------------------------------------------------------------


def test_asvs_3_2_1_sign_in_issues_a_new_token_and_ends_the_old_one(client: FlaskClient) -> None:
    sign_up(client)
    before = cookie(client, ACCESS)
    sign_in(client)
    after = cookie(client, ACCESS)
    assert after != before
    client.set_cookie(ACCESS, before)
    client.delete_cookie(REFRESH)
    assert client.get("/auth/session").status_code == 401


def test_asvs_3_2_2_tokens_carry_at_least_128_bits(client: FlaskClient) -> None:
    sign_up(client)
    for name in (ACCESS, REFRESH):
        value = cookie(client, name)
        assert len(value) == TOKEN_LENGTH and value.isalnum()
    assert TOKEN_LENGTH * math.log2(62) >= 128


# -- V3.3 session termination ----------------------------------------------------------


def test_asvs_3_3_1_sign_out_kills_the_tokens_server_side(client: FlaskClient) -> None:
    sign_up(client)
    access, refresh = cookie(client, ACCESS), cookie(client, REFRESH)
    client.post("/auth/sign-out", json={})
    replay = client.application.test_client()
    replay.set_cookie(ACCESS, access)
    replay.set_cookie(REFRESH, refresh)
    assert replay.get("/auth/session").status_code == 401
    assert replay.post("/auth/refresh", headers={"Origin": ORIGIN}).status_code == 401


def test_asvs_3_3_3_a_password_change_ends_the_other_sessions_and_keeps_this_one(
    app: Flask,
) -> None:
    @app.post("/change-password")
    def change_password() -> str:
        app.lucia.update_user_password(current_user.user_id, "a brand new password")
        return "changed"

    laptop, phone = browser(app), browser(app)
    sign_up(laptop)
    sign_in(phone)
    assert laptop.post("/change-password").text == "changed"
    assert laptop.get("/auth/session").status_code == 200
    assert phone.get("/auth/session").status_code == 401


def test_asvs_3_3_4_the_user_sees_their_sessions_and_revokes_one(app: Flask) -> None:
    laptop, phone = browser(app), browser(app)
    sign_up(laptop)
    sign_in(phone)
    listed = laptop.get("/auth/sessions").json["sessions"]
    assert len(listed) == 2
    assert [s["current"] for s in listed].count(True) == 1
    other = next(s for s in listed if not s["current"])
    response = laptop.post(f"/auth/sessions/{other['id']}/revoke", json={})
    assert response.json == {"revoked": other["id"], "current": False}
    assert phone.get("/auth/session").status_code == 401
    assert laptop.get("/auth/session").status_code == 200


def test_revoking_the_current_session_signs_it_out(client: FlaskClient) -> None:
    sign_up(client)
    (mine,) = client.get("/auth/sessions").json["sessions"]
    response = client.post(f"/auth/sessions/{mine['id']}/revoke", json={})
    assert response.json["current"] is True
    assert client.get("/auth/session").status_code == 401


def test_revoking_another_users_session_is_404_and_touches_nothing(app: Flask) -> None:
    ann, bob = browser(app), browser(app)
    sign_up(ann, "ann@example.com")
    sign_up(bob, "bob@example.com")
    (bobs,) = bob.get("/auth/sessions").json["sessions"]
    assert ann.post(f"/auth/sessions/{bobs['id']}/revoke", json={}).status_code == 404
    assert bob.get("/auth/session").status_code == 200


def test_revoking_needs_a_session_and_the_same_origin(app: Flask) -> None:
    anonymous = browser(app)
    assert anonymous.post("/auth/sessions/x/revoke", json={}).status_code == 401
    ann = browser(app)
    sign_up(ann)
    (mine,) = ann.get("/auth/sessions").json["sessions"]
    cross = ann.post(
        f"/auth/sessions/{mine['id']}/revoke", json={}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert ann.get("/auth/session").status_code == 200


def test_the_devices_page_lists_sessions_and_its_button_revokes(app: Flask) -> None:
    laptop, phone = browser(app), browser(app)
    sign_up(laptop)
    sign_in(phone)
    page = laptop.get("/auth/devices").text
    assert page.count("Sign out this device") == 2 and page.count("This device<") == 1
    other = next(s for s in laptop.get("/auth/sessions").json["sessions"] if not s["current"])
    response = laptop.post(f"/auth/sessions/{other['id']}/revoke")
    assert response.status_code == 303 and response.location == "/auth/devices"
    assert phone.get("/auth/session").status_code == 401


def test_a_session_records_its_device_and_address(app: Flask) -> None:
    client = browser(app)
    client.post(
        "/auth/sign-up",
        json={"identifier": "ann@example.com", "password": PASSWORD},
        headers={"User-Agent": "Firefox/140"},
        environ_base={"REMOTE_ADDR": "203.0.113.9", "HTTP_ORIGIN": ORIGIN},
    )
    (mine,) = client.get("/auth/sessions").json["sessions"]
    assert mine["user_agent"] == "Firefox/140" and mine["ip_address"] == "203.0.113.9"


def test_last_used_is_written_at_most_once_per_touch_interval(
    client: FlaskClient, clock: Clock, queries: list[str]
) -> None:
    sign_up(client)
    queries.clear()
    client.get("/private")
    clock.advance(4 * 60)
    client.get("/private")
    assert not any(q.lstrip().upper().startswith("UPDATE") for q in queries)
    clock.advance(61)
    client.get("/private")
    updates = [q for q in queries if q.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1
    (mine,) = client.get("/auth/sessions").json["sessions"]
    assert mine["last_used_at"] == int(clock.now * 1000)


def test_last_used_is_skipped_not_waited_for_while_sqlite_is_locked_for_writing(
    make_app: Any, tmp_path: Any, clock: Clock
) -> None:
    path = tmp_path / "locked.sqlite3"
    app = make_app(
        LUCIA_DATABASE_URL=f"sqlite:///{path}",
        LUCIA_ENGINE_OPTIONS={"connect_args": {"timeout": 60}},  # a writer would wait 60 s
    )
    app.add_url_rule("/private", "private", login_required(lambda: "private"))
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    user_id = sign_up(client)["user"]["user_id"]
    clock.advance(6 * 60)

    def last_used() -> int:
        with app.app_context():
            (session,) = app.lucia.get_user_sessions(user_id)  # type: ignore[attr-defined]
        return int(session.last_used_at.timestamp() * 1000)

    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock (a cleanup batch)
    try:
        started = time.monotonic()
        assert client.get("/private").status_code == 200
        assert time.monotonic() - started < 10
    finally:
        other.rollback()
        other.close()
    assert last_used() < int(clock.now * 1000)  # skipped, not waited for
    client.get("/private")
    assert last_used() == int(clock.now * 1000)  # the next request wrote it
    with app.app_context(), app.extensions["lucia"].storage.engine.connect() as conn:
        dbapi_connection: Any = conn.connection.dbapi_connection
        busy = dbapi_connection.execute("PRAGMA busy_timeout").fetchone()
    assert busy[0] == 60_000  # the connection's own timeout is back


# -- V3.4 cookies -----------------------------------------------------------------------


@pytest.fixture
def production_cookies(make_app: Any) -> list[str]:
    app = make_app(TESTING=False, LUCIA_BASE_URL=ORIGIN)
    response = app.test_client().post(
        "/auth/sign-up", json={"identifier": "a@example.com", "password": PASSWORD}
    )
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 3  # the two token cookies and the device cookie
    return cookies


def test_asvs_3_4_1_cookies_are_secure(production_cookies: list[str]) -> None:
    assert all("; Secure" in c for c in production_cookies)


def test_asvs_3_4_2_cookies_are_httponly(production_cookies: list[str]) -> None:
    assert all("; HttpOnly" in c for c in production_cookies)


def test_asvs_3_4_3_cookies_are_samesite(production_cookies: list[str]) -> None:
    assert all("; SameSite=Lax" in c for c in production_cookies)


def test_asvs_3_4_5_cookie_path_is_configurable_and_root_by_default(make_app: Any) -> None:
    app = make_app(LUCIA_COOKIE_PATH="/app")
    response = app.test_client().post(
        "/auth/sign-up", json={"identifier": "a@example.com", "password": PASSWORD}
    )
    assert all("; Path=/app" in c for c in response.headers.getlist("Set-Cookie"))


# -- V2.2.1 throttling ------------------------------------------------------------------


def test_asvs_2_2_1_failures_are_delayed_after_five_with_growing_waits(
    lucia: Lucia, clock: Clock
) -> None:
    lucia.create_user("email", "ann@example.com", password=PASSWORD)
    for _ in range(5):
        assert fail(lucia).code == "AUTH_INVALID_PASSWORD"
    throttled = fail(lucia)
    assert (throttled.code, throttled.retry_after) == ("AUTH_TOO_MANY_ATTEMPTS", 1)
    clock.advance(1)
    assert fail(lucia).code == "AUTH_INVALID_PASSWORD"
    assert fail(lucia).retry_after == 2


def test_asvs_2_2_1_the_default_delays_allow_far_fewer_than_100_failures_an_hour(
    lucia: Lucia, clock: Clock
) -> None:
    lucia.create_user("email", "ann@example.com", password=PASSWORD)
    end, failures = clock.now + 3600, 0
    while clock.now < end:  # an attacker who retries the moment they may
        error = fail(lucia)
        if error.code == "AUTH_TOO_MANY_ATTEMPTS":
            clock.advance(error.retry_after or 1)
        else:
            failures += 1
    print(f"\nfailures an attacker gets in one hour with the defaults: {failures}")
    assert failures <= 20


def test_asvs_2_2_1_an_account_takes_at_most_100_failures_per_window(
    make_app: Any, clock: Clock
) -> None:
    app = make_app(LUCIA_THROTTLE_FREE_ATTEMPTS=1000)  # no delays: only the hard cap
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
        codes = [fail(app.lucia).code for _ in range(101)]
        assert codes.count("AUTH_INVALID_PASSWORD") == 100
        assert codes[-1] == "AUTH_TOO_MANY_ATTEMPTS"
        with pytest.raises(LuciaError) as excinfo:  # even the right password waits
            app.lucia.authenticate_user("email", "ann@example.com", PASSWORD)
        assert excinfo.value.code == "AUTH_TOO_MANY_ATTEMPTS"
        clock.advance(3600)
        assert app.lucia.authenticate_user("email", "ann@example.com", PASSWORD)


def test_a_throttled_attempt_runs_no_password_hash(
    app: Flask, lucia: Lucia, monkeypatch: pytest.MonkeyPatch
) -> None:
    lucia.create_user("email", "ann@example.com", password=PASSWORD)
    for _ in range(5):
        fail(lucia)
    hasher = app.extensions["lucia"].hasher
    monkeypatch.setattr(hasher, "verify", lambda *a: pytest.fail("hashed while throttled"))
    assert fail(lucia).code == "AUTH_TOO_MANY_ATTEMPTS"


def test_a_successful_sign_in_resets_the_identifiers_counter(lucia: Lucia, clock: Clock) -> None:
    lucia.create_user("email", "ann@example.com", password=PASSWORD)
    for _ in range(5):
        fail(lucia)
    clock.advance(2)
    lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    for _ in range(5):
        assert fail(lucia).code == "AUTH_INVALID_PASSWORD"


def test_unknown_identifiers_are_throttled_like_known_ones(lucia: Lucia) -> None:
    for _ in range(5):
        assert fail(lucia, "nobody@example.com").code == "AUTH_INVALID_PROVIDER_ID"
    assert fail(lucia, "nobody@example.com").code == "AUTH_TOO_MANY_ATTEMPTS"


def test_one_client_address_trying_many_accounts_is_throttled(make_app: Any) -> None:
    app = make_app(LUCIA_THROTTLE_IP_FREE_ATTEMPTS=3)
    client = browser(app)
    codes = [sign_in(client, "wrong", f"user{i}@example.com").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]
    other = app.test_client()
    response = other.post(
        "/auth/sign-in",
        json={"identifier": "user9@example.com", "password": "wrong"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 400


def test_the_sign_in_endpoint_answers_429_with_retry_after(client: FlaskClient) -> None:
    sign_up(client)
    for _ in range(5):
        sign_in(client, "wrong password")
    response = sign_in(client, "wrong password")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"


def test_the_sign_in_form_answers_429_with_retry_after(client: FlaskClient) -> None:
    from .test_forms import post_form

    sign_up(client)
    client.post("/auth/sign-out", json={})
    for _ in range(5):
        post_form(client, "/auth/sign-in", identifier="ann@example.com", password="wrong one")
    response = post_form(client, "/auth/sign-in", identifier="ann@example.com", password="x1")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert "Too many attempts. Try again in 1 second." in response.text


def test_throttling_can_be_switched_off(make_app: Any) -> None:
    app = make_app(LUCIA_THROTTLE=False)
    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
        codes = {fail(app.lucia).code for _ in range(8)}
    assert codes == {"AUTH_INVALID_PASSWORD"}


def test_throttle_counters_are_shared_through_the_database(make_app: Any, tmp_path: Any) -> None:
    from .conftest import TEST_DATABASE_URL

    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shared.db'}"
    lucia = Lucia()
    prefix = unique_prefix("shared_")
    first = make_app(lucia, LUCIA_DATABASE_URL=url, LUCIA_TABLE_PREFIX=prefix)
    second = make_app(lucia, LUCIA_DATABASE_URL=url, LUCIA_TABLE_PREFIX=prefix)
    with first.app_context():
        for _ in range(5):
            fail(lucia, "x@example.com")
    with second.app_context():
        assert fail(lucia, "x@example.com").code == "AUTH_TOO_MANY_ATTEMPTS"


# -- ASVS 5.0 6.3.8: unknown user and wrong password look alike -------------------------


def test_asvs5_6_3_8_unknown_user_and_wrong_password_same_answer_and_time(
    make_app: Any,
) -> None:
    app = make_app(LUCIA_THROTTLE=False)
    client = browser(app)
    sign_up(client)
    client.post("/auth/sign-out", json={})
    known: list[float] = []
    unknown: list[float] = []
    bodies = set()
    for i in range(30):
        for identifier, times in (("ann@example.com", known), (f"x{i}@example.com", unknown)):
            started = time.perf_counter()
            response = sign_in(client, "wrong password", identifier)
            times.append(time.perf_counter() - started)
            bodies.add((response.status_code, response.get_data(as_text=True)))
    assert len(bodies) == 1
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"\nmedian unknown/known sign-in time: {ratio:.3f}")
    assert 0.75 <= ratio <= 1.25


# -- V7.4.2 / re-authentication ---------------------------------------------------------


def test_asvs_7_4_2_deleting_a_user_ends_its_sessions(app: Flask, client: FlaskClient) -> None:
    user_id = sign_up(client)["user"]["user_id"]
    with app.app_context():
        app.lucia.delete_user(user_id)
    assert client.get("/auth/session").status_code == 401
    assert client.post("/auth/refresh").status_code == 401


def test_a_stale_session_is_sent_to_confirm_its_password(client: FlaskClient, clock: Clock) -> None:
    sign_up(client)
    clock.advance(11 * 60)
    response = client.get("/fresh", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.location == "/auth/confirm?next=/fresh"


def test_confirming_the_password_makes_this_session_fresh_without_a_new_one(
    client: FlaskClient, clock: Clock
) -> None:
    from .test_forms import csrf_token

    sign_up(client)
    access = cookie(client, ACCESS)
    clock.advance(11 * 60)
    token = csrf_token(client.get("/auth/confirm?next=/fresh").text)
    response = client.post(
        "/auth/confirm", data={"csrf_token": token, "password": PASSWORD, "next": "/fresh"}
    )
    assert response.status_code == 303 and response.location == "/fresh"
    assert "Set-Cookie" not in response.headers
    assert cookie(client, ACCESS) == access
    assert client.get("/fresh").json == {"ok": True}


def test_confirming_with_json_makes_the_session_fresh(client: FlaskClient, clock: Clock) -> None:
    sign_up(client)
    clock.advance(11 * 60)
    assert client.get("/fresh", headers={"Accept": "application/json"}).status_code == 401
    response = client.post("/auth/confirm", json={"password": PASSWORD})
    assert response.json["fresh"] is True
    assert client.get("/fresh", headers={"Accept": "application/json"}).json == {"ok": True}


def test_confirming_with_a_wrong_password_keeps_the_session_stale(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    clock.advance(11 * 60)
    response = client.post("/auth/confirm", json={"password": "not it at all"})
    assert response.status_code == 400 and response.json["error"] == "AUTH_INVALID_PASSWORD"
    assert client.get("/fresh", headers={"Accept": "application/json"}).status_code == 401


def test_confirming_needs_a_session(client: FlaskClient) -> None:
    response = client.post("/auth/confirm", json={"password": PASSWORD})
    assert response.status_code == 401
