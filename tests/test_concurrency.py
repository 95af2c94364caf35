"""Racing requests: the database's own atomicity, not a Python lock, keeps sessions whole."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia, LuciaError, Session, Tokens, current_user

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL

THREADS = 50


def storm(app: Flask, refresh_token: str) -> list[Tokens | LuciaError]:
    """Present one refresh token from THREADS threads released at the same instant."""
    barrier = threading.Barrier(THREADS)

    def one() -> Tokens | LuciaError:
        with app.app_context():
            barrier.wait()
            try:
                return app.lucia.refresh_session(refresh_token)[1]
            except LuciaError as error:
                return error

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda _: one(), range(THREADS)))


def live_refresh_tokens(app: Flask) -> int:
    storage = app.extensions["lucia"].storage
    table = storage.refresh_tokens
    with storage.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.spent_at.is_(None))
        ).scalar_one()


def test_a_refresh_storm_within_the_grace_signs_nobody_out(app: Flask, lucia: Lucia) -> None:
    user = lucia.create_user("email", "a@example.com")
    session, tokens = lucia.create_session(user.user_id)
    results = storm(app, tokens.refresh_token)
    errors = [r for r in results if isinstance(r, LuciaError)]
    assert errors == []
    pairs = {(r.access_token, r.refresh_token) for r in results if isinstance(r, Tokens)}
    assert len(pairs) == 1  # every thread got the one pair the winner made
    assert lucia.validate_access_token(pairs.pop()[0]).session_id == session.session_id
    assert live_refresh_tokens(app) == 1


def test_after_a_storm_a_replay_past_the_grace_revokes_the_session(
    app: Flask, lucia: Lucia, clock: Any
) -> None:
    user = lucia.create_user("email", "a@example.com")
    _, tokens = lucia.create_session(user.user_id)
    (live,) = {(r.access_token, r.refresh_token) for r in storm(app, tokens.refresh_token)}
    clock.advance(5 * 60 + 1)  # past the grace and the touch interval
    lucia.validate_access_token(live[0])  # the live pair is in use
    with pytest.raises(LuciaError) as excinfo:
        lucia.refresh_session(tokens.refresh_token)
    assert excinfo.value.code == "AUTH_INVALID_REFRESH_TOKEN"
    with pytest.raises(LuciaError):  # the session the storm kept alive is gone
        lucia.validate_access_token(live[0])


# -- ending a session while it is being refreshed (issue 10, item 2) ---------------------

#: Rounds per way of ending a session, as in the review that found the race.
RACE_ROUNDS = {"password change": 40, "device revoke": 30, "sign-out": 30}


@dataclass
class Tally:
    """What went wrong over the rounds of a race."""

    errors: list[str] = field(default_factory=list)  # 503s and DATABASE_* errors
    survivors: int = 0  # sessions still usable after the call that ended them returned


def keep_refreshing(
    app: Flask,
    issued: list[Tokens],
    started: threading.Event,
    stop: threading.Event,
    tally: Tally,
) -> None:
    """Rotate a session's latest refresh token as fast as possible until it fails or ``stop``."""
    token = issued[-1].refresh_token
    with app.app_context():
        while not stop.is_set():
            try:
                _, tokens = app.lucia.refresh_session(token)
            except LuciaError as error:
                if error.code != "AUTH_INVALID_REFRESH_TOKEN":
                    tally.errors.append(f"refresh: {error.code}")
                break
            finally:
                started.set()
            issued.append(tokens)
            token = tokens.refresh_token


def still_works(app: Flask, tokens: Tokens) -> bool:
    """True when the access token validates or the refresh token refreshes."""
    with app.app_context():
        auth = app.extensions["lucia"]
        if auth.find(tokens.access_token) is not None:
            return True
        try:
            auth.refresh(tokens.refresh_token)
        except LuciaError:
            return False
        return True


def race(app: Flask, rounds: int, end: Callable[[Tokens, Session], int]) -> Tally:
    """Each round: a session is refreshed in a loop while ``end`` ends it over HTTP.

    ``end`` gets the session's latest tokens (a tab that shares the refreshing browser's
    cookies) and the session; it answers the HTTP status of the ending call.
    """
    tally = Tally()
    user = app.lucia.get_user_by_provider_id("email", "ann@example.com")
    for _ in range(rounds):
        session, tokens = app.lucia.create_session(user.user_id)
        issued = [tokens]
        started, stop = threading.Event(), threading.Event()
        with ThreadPoolExecutor(1) as pool:
            refresher = pool.submit(keep_refreshing, app, issued, started, stop, tally)
            started.wait(5)
            time.sleep(random.uniform(0, 0.005))
            status = end(issued[-1], session)
            stop.set()
            if status == 503:
                tally.errors.append("ending call: 503")
            refresher.result(30)
        if still_works(app, issued[-1]):
            tally.survivors += 1
    return tally


@pytest.fixture
def race_app(make_app: Any) -> Flask:
    """An app with a cheap hash and a change-password view, and a user signed up."""
    app = make_app(LUCIA_PASSWORD_TIME_COST=1, LUCIA_PASSWORD_MEMORY_COST=1024)
    passwords = itertools.cycle(["a new password 1", "a new password 2"])

    @app.post("/change-password")
    def change_password() -> str:
        app.lucia.update_user_password(current_user.user_id, next(passwords))
        return "changed"

    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)
    return app


def owner(app: Flask) -> FlaskClient:
    """The account owner's own browser, signed in (its session is not the stolen one)."""
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    response = client.post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    return client


def report(kind: str, rounds: int, tally: Tally) -> None:
    ending = sum(e.startswith("ending call") for e in tally.errors)
    print(
        f"\n{kind} racing refreshes, {rounds} rounds: {ending} ending calls answered 503, "
        f"{len(tally.errors) - ending} refreshes failed with DATABASE_*, "
        f"{tally.survivors} sessions still usable after the ending call returned"
    )


def test_a_password_change_racing_refreshes_always_ends_the_other_session(
    race_app: Flask,
) -> None:
    rounds = RACE_ROUNDS["password change"]
    with race_app.app_context():
        laptop = owner(race_app)
        tally = race(race_app, rounds, lambda *_: laptop.post("/change-password").status_code)
    report("password change", rounds, tally)
    assert tally.errors == []
    assert tally.survivors == 0


def test_a_device_revoke_racing_refreshes_always_ends_the_session(race_app: Flask) -> None:
    rounds = RACE_ROUNDS["device revoke"]

    def revoke(_: Tokens, session: Session) -> int:
        path = f"/auth/sessions/{session.session_id}/revoke"
        return laptop.post(path, json={}).status_code

    with race_app.app_context():
        laptop = owner(race_app)
        tally = race(race_app, rounds, revoke)
    report("device revoke", rounds, tally)
    assert tally.errors == []
    assert tally.survivors == 0


def test_a_sign_out_racing_refreshes_always_ends_the_session(
    race_app: Flask,
) -> None:
    rounds = RACE_ROUNDS["sign-out"]

    def sign_out(tokens: Tokens, _: Session) -> int:
        tab = race_app.test_client()
        tab.environ_base["HTTP_ORIGIN"] = ORIGIN
        tab.set_cookie("lucia_access_token", tokens.access_token)
        tab.set_cookie("lucia_refresh_token", tokens.refresh_token)
        return tab.post("/auth/sign-out", json={}).status_code

    with race_app.app_context():
        tally = race(race_app, rounds, sign_out)
    report("sign-out", rounds, tally)
    assert tally.errors == []
    assert tally.survivors == 0


SHORT_BUSY_TIMEOUT = {"connect_args": {"timeout": 0.05}}


def hold_a_conflicting_lock(app: Flask, session_id: str, writing: threading.Event) -> None:
    """Get in the way of a write to session ``session_id`` until it has to give up once.

    SQLite: hold the write lock past the app's busy timeout, then let go. PostgreSQL: lock
    the session's token rows (the order that used to deadlock), wait for the write to
    queue behind them, then ask for the session row it holds: a deadlock, which the server
    breaks by aborting the write (it has waited longest).
    """
    storage = app.extensions["lucia"].storage
    refresh = storage.refresh_tokens
    with storage.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            writing.wait(5)
            time.sleep(0.15)  # three busy timeouts of 50 ms: the first try fails
            conn.rollback()
            return
        with conn.begin():
            conn.execute(
                sa.select(refresh.c.digest)
                .where(refresh.c.session_id == session_id)
                .with_for_update()
            )
            writing.wait(5)
            time.sleep(0.3)  # the write now waits for these rows, holding the session row
            sessions = storage.sessions
            conn.execute(
                sa.select(sessions.c.id).where(sessions.c.id == session_id).with_for_update()
            )


def revoke(app: Flask, user_id: str, session: Session, tokens: Tokens) -> None:
    """End the session, then check that it is gone."""
    app.lucia.invalidate_user_session(user_id, session.session_id)
    with pytest.raises(LuciaError):
        app.lucia.validate_access_token(tokens.access_token)


def refresh(app: Flask, user_id: str, session: Session, tokens: Tokens) -> None:
    """Rotate the session's tokens, then check that the new pair works."""
    _, rotated = app.lucia.refresh_session(tokens.refresh_token)
    assert app.lucia.validate_access_token(rotated.access_token).session_id == session.session_id


@pytest.mark.parametrize("write", [revoke, refresh], ids=["revoke", "refresh"])
def test_a_write_that_meets_a_lock_conflict_is_tried_again_not_answered_503(
    make_app: Any, write: Callable[[Flask, str, Session, Tokens], None]
) -> None:
    # On SQLite, a busy timeout of 50 ms: the first try gives up while the lock is held.
    app = make_app() if TEST_DATABASE_URL else make_app(LUCIA_ENGINE_OPTIONS=SHORT_BUSY_TIMEOUT)
    with app.app_context():
        user = app.lucia.create_user("email", "a@example.com")
        session, tokens = app.lucia.create_session(user.user_id)
    writing = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(hold_a_conflicting_lock, app, session.session_id, writing)
        time.sleep(0.1)  # the lock is taken
        with app.app_context():
            writing.set()
            write(app, user.user_id, session, tokens)
        holder.result(10)
