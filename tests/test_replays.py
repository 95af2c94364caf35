"""Replays of spent refresh tokens (issue 18, items 3 and 4).

Item 3: once the pair a refresh gave was used (its access token validated once, by the
hook or by ``validate_access_token``), a replay of the old refresh token after the grace
is theft, whatever ``LUCIA_TOUCH_INTERVAL`` is. Item 4: a token of the session's family
spent within the grace is a race however many rotations followed it, and the refresh
rows of a session stay bounded.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia, LuciaError, login_required, signals
from flask_lucia.core.refresh import SPENT_KEPT

from .conftest import ORIGIN, PASSWORD, Clock, cookie, sign_up
from .test_transport import bearer, body_refresh, body_sign_in

#: Past the 30 s grace, well within the 5 min touch interval: where the hole was.
PAST_THE_GRACE = 60


def reuse_signals() -> tuple[Any, list[str]]:
    """A context manager collecting the session ids ``refresh_token_reused`` names."""
    seen: list[str] = []
    recorder = signals.refresh_token_reused.connected_to(
        lambda app, session_id, user_id: seen.append(session_id)
    )
    return recorder, seen


def tab(app: Flask, **cookies: str) -> FlaskClient:
    """A browser with just these cookies."""
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def refresh_rows(app: Flask, session_id: str) -> int:
    storage = app.extensions["lucia"].storage
    table = storage.refresh_tokens
    with storage.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.session_id == session_id)
        ).scalar_one()


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A client like a native app's: no Origin header, no cookie jar in use."""
    with app.app_context():
        app.lucia.create_user(  # type: ignore[attr-defined]
            "email", "ann@example.com", password=PASSWORD
        )
    return app.test_client(use_cookies=False)


def writes(queries: list[str]) -> list[str]:
    return [q for q in queries if q.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


# -- item 3: a replay after the pair was used revokes ------------------------------------


def test_a_browser_replay_after_the_new_pair_was_used_revokes_the_session(
    client: FlaskClient, app: Flask, clock: Clock
) -> None:
    sign_up(client)
    old_refresh = cookie(client, "lucia_refresh_token")
    assert client.post("/auth/refresh", json={}).status_code == 200
    assert client.get("/private").status_code == 200  # the new access token is used
    clock.advance(PAST_THE_GRACE)
    recorder, reused = reuse_signals()
    with recorder:
        thief = tab(app, lucia_refresh_token=old_refresh or "")
        assert thief.get("/private").status_code != 200
    assert len(reused) == 1
    assert client.get("/private").status_code != 200  # the session is gone


def test_a_body_transport_replay_after_the_new_pair_was_used_revokes_the_session(
    api: FlaskClient, clock: Clock
) -> None:
    first = body_sign_in(api).json
    second = body_refresh(api, first["refresh_token"]).json
    assert bearer(api, second["access_token"]).status_code == 200
    clock.advance(PAST_THE_GRACE)
    replayed = body_refresh(api, first["refresh_token"])
    assert replayed.status_code == 401
    assert replayed.json["error"] == "AUTH_INVALID_REFRESH_TOKEN"
    assert bearer(api, second["access_token"]).status_code == 401


def test_a_python_api_replay_after_the_new_pair_was_validated_revokes_the_session(
    lucia: Lucia, clock: Clock
) -> None:
    user = lucia.create_user("email", "a@example.com")
    session, tokens = lucia.create_session(user.user_id)
    _, new = lucia.refresh_session(tokens.refresh_token)
    lucia.validate_access_token(new.access_token)
    clock.advance(PAST_THE_GRACE)
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError) as excinfo:
        lucia.refresh_session(tokens.refresh_token)
    assert excinfo.value.code == "AUTH_INVALID_REFRESH_TOKEN"
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(new.access_token)


def test_a_browser_whose_refresh_answer_was_lost_is_still_recovered(
    client: FlaskClient, app: Flask, clock: Clock
) -> None:
    sign_up(client)
    old_refresh = cookie(client, "lucia_refresh_token") or ""
    lost = tab(app, lucia_refresh_token=old_refresh)
    assert lost.post("/auth/refresh", json={}).status_code == 200  # never reaches the browser
    clock.advance(PAST_THE_GRACE)
    recorder, reused = reuse_signals()
    with recorder:
        again = tab(app, lucia_refresh_token=old_refresh)
        assert again.get("/private").status_code == 200
    assert reused == []
    assert again.get("/private").status_code == 200


def test_the_first_use_of_a_rotated_access_token_is_one_write(
    client: FlaskClient, queries: list[str]
) -> None:
    sign_up(client)
    assert client.post("/auth/refresh", json={}).status_code == 200
    queries.clear()
    assert client.get("/private").status_code == 200
    assert len(writes(queries)) >= 1  # recorded, in one short transaction
    queries.clear()
    assert client.get("/private").status_code == 200
    assert writes(queries) == []


def test_a_signed_in_request_with_an_already_used_token_is_one_query_and_no_write(
    client: FlaskClient, queries: list[str]
) -> None:
    sign_up(client)
    client.post("/auth/refresh", json={})
    client.get("/private")  # the first use of the new pair
    queries.clear()
    assert client.get("/private").status_code == 200
    assert len(queries) == 1 and writes(queries) == []


def test_a_first_sign_in_pair_needs_no_first_use_write(
    client: FlaskClient, queries: list[str]
) -> None:
    sign_up(client)
    queries.clear()
    assert client.get("/private").status_code == 200
    assert len(queries) == 1


def test_a_first_use_that_cannot_be_recorded_is_not_served_and_the_next_request_records_it(
    make_app: Any, tmp_path: Any, clock: Clock
) -> None:
    path = tmp_path / "locked.sqlite3"
    app = make_app(
        LUCIA_DATABASE_URL=f"sqlite:///{path}",
        LUCIA_ENGINE_OPTIONS={"connect_args": {"timeout": 0.2}},
    )
    app.add_url_rule("/private", "private", login_required(lambda: "private"))
    client = tab(app)
    sign_up(client)
    old_refresh = cookie(client, "lucia_refresh_token") or ""
    assert client.post("/auth/refresh", json={}).status_code == 200
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock throughout
    try:
        locked = client.get("/private")
    finally:
        other.rollback()
        other.close()
    assert locked.status_code == 503  # not served unrecorded, and not a sign-out
    assert locked.headers.getlist("Set-Cookie") == []
    assert client.get("/private").status_code == 200  # recorded now
    clock.advance(PAST_THE_GRACE)
    assert tab(app, lucia_refresh_token=old_refresh).get("/private").status_code != 200
    assert client.get("/private").status_code != 200  # the replay revoked the session


# -- item 4: a refresh storm after a restart ---------------------------------------------


def test_the_oldest_token_spent_within_the_grace_follows_many_rotations_to_the_live_pair(
    lucia: Lucia, clock: Clock
) -> None:
    user = lucia.create_user("email", "a@example.com")
    session, first = lucia.create_session(user.user_id)
    tokens = first
    for _ in range(SPENT_KEPT + 3):  # more rotations than spent rows were ever kept
        clock.advance(0.1)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    clock.advance(0.4)  # a cold worker answers late
    recorder, reused = reuse_signals()
    with recorder:
        again_session, again = lucia.refresh_session(first.refresh_token)
    assert reused == []
    assert again_session.session_id == session.session_id
    assert lucia.validate_access_token(again.access_token).session_id == session.session_id
    lucia.validate_access_token(tokens.access_token)  # the other tabs are still signed in


def test_every_token_spent_within_the_grace_follows_to_one_live_pair(
    lucia: Lucia, clock: Clock
) -> None:
    user = lucia.create_user("email", "a@example.com")
    _, tokens = lucia.create_session(user.user_id)
    issued = [tokens]
    for _ in range(40):
        clock.advance(0.5)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
        issued.append(tokens)
    clock.advance(1)
    live = {lucia.refresh_session(t.refresh_token)[1].refresh_token for t in issued}
    assert len(live) == 1


@pytest.mark.parametrize("step", [0.0, 0.2, 3.0, 11.0], ids=["frozen", "0.2s", "3s", "11s"])
def test_three_hundred_fast_refreshes_leave_at_most_five_refresh_rows(
    app: Flask, lucia: Lucia, clock: Clock, step: float
) -> None:
    user = lucia.create_user("email", "a@example.com")
    session, tokens = lucia.create_session(user.user_id)
    for _ in range(300):
        clock.advance(step)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    rows = refresh_rows(app, session.session_id)
    print(f"\nrefresh rows after 300 refreshes {step} s apart: {rows}")
    assert rows <= SPENT_KEPT + 2 == 5
    assert lucia.validate_access_token(tokens.access_token).session_id == session.session_id


def test_a_replay_past_the_grace_after_a_storm_still_revokes(lucia: Lucia, clock: Clock) -> None:
    user = lucia.create_user("email", "a@example.com")
    session, first = lucia.create_session(user.user_id)
    tokens = first
    for _ in range(30):
        clock.advance(0.1)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    lucia.validate_access_token(tokens.access_token)
    clock.advance(31)
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(first.refresh_token)
    assert reused == [session.session_id]


def test_a_young_pair_handed_back_has_a_live_access_token_with_a_short_ttl(
    make_app: Any, clock: Clock
) -> None:
    app = make_app(LUCIA_ACCESS_TOKEN_TTL=2)
    with app.app_context():
        lucia = app.lucia
        user = lucia.create_user("email", "a@example.com")
        session, tokens = lucia.create_session(user.user_id)
        for _ in range(100):  # explicit refreshes every 0.3 s, access tokens live 2 s
            clock.advance(0.3)
            _, tokens = lucia.refresh_session(tokens.refresh_token)
            assert lucia.validate_access_token(tokens.access_token).session_id == (
                session.session_id
            )
        assert refresh_rows(app, session.session_id) <= SPENT_KEPT + 2
