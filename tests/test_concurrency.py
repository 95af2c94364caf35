"""Racing requests: the database's own atomicity, not a Python lock, keeps sessions whole."""

from __future__ import annotations

import itertools
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia, LuciaError, Session, Tokens, current_user

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, AppFactory

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


# -- a refresh storm against a freshly started multi-worker server (issue 18, item 4) ------

#: Tabs of one browser (one cookie jar), gunicorn workers, the access token's lifetime (s),
#: the share of requests that refresh explicitly, and the run's bounds, as in the issue.
TABS, WORKERS, STORM_TTL, EXPLICIT_REFRESHES = 12, 4, 2, 0.3
STORM_SECONDS, STORM_REQUESTS_PER_TAB = 3.0, 50
#: How late each worker answers its first request (the issue measured 0.385 s), and the
#: share of requests that reach a worker late in the run too, by how much (s): the same to
#: the server as a cold worker's backlog, and what makes the storm's timing repeatable.
COLD_DELAY = 0.5
LATE_REQUESTS, LATE_BY = 0.1, (0.4, 1.0)
WORKTREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_gunicorn(url: str, prefix: str, port: int) -> subprocess.Popen[bytes]:
    """``tests.storm_app`` under gunicorn, WORKERS workers, no preloading: every worker
    builds its app, engine and statements on its first request, as after a restart."""
    pytest.importorskip("gunicorn")
    env = {
        **os.environ,
        "STORM_DATABASE_URL": url,
        "STORM_TABLE_PREFIX": prefix,
        "STORM_ACCESS_TTL": str(STORM_TTL),
        "STORM_COLD_DELAY": str(COLD_DELAY),
    }
    command = [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS)]
    command += ["--bind", f"127.0.0.1:{port}", "--chdir", WORKTREE, "--log-level", "warning"]
    command += ["tests.storm_app:create_app()"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def wait_for_port(port: int, server: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Until the server accepts connections (its workers may still be booting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    pytest.fail("gunicorn did not listen in time")


class CookieJar:
    """One browser's auth cookies shared by its tabs: each request sends what the jar
    holds when it leaves; each answer's cookies replace them when it arrives."""

    NAMES = ("lucia_access_token", "lucia_refresh_token")

    def __init__(self, access: str, refresh: str) -> None:
        self._lock = threading.Lock()
        self._cookies = dict(zip(self.NAMES, (access, refresh), strict=True))

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._cookies)

    def store(self, response: Any) -> None:
        with self._lock:
            for header in response.raw.headers.getlist("Set-Cookie"):
                name, _, rest = header.partition("=")
                if name in self.NAMES:
                    value = rest.partition(";")[0]
                    if value and "Max-Age=0" not in header:
                        self._cookies[name] = value
                    else:
                        self._cookies.pop(name, None)


class Deadline:
    """STORM_SECONDS after the server's first answer (its workers boot meanwhile)."""

    def __init__(self) -> None:
        self._at: float | None = None
        self._lock = threading.Lock()

    def answered(self) -> None:
        with self._lock:
            if self._at is None:
                self._at = time.monotonic() + STORM_SECONDS

    def passed(self) -> bool:
        return self._at is not None and time.monotonic() > self._at


def tab_requests(base: str, jar: CookieJar, deadline: Deadline, statuses: Counter[str]) -> None:
    """One tab: GET a protected page, or (EXPLICIT_REFRESHES of the time) POST a refresh."""
    import requests

    http = requests.Session()
    http.headers.update({"Origin": base, "Accept": "application/json"})
    for _ in range(STORM_REQUESTS_PER_TAB):
        if deadline.passed():
            return
        refresh = random.random() < EXPLICIT_REFRESHES
        http.cookies.clear()
        cookies = jar.snapshot()
        if random.random() < LATE_REQUESTS:  # it reaches a worker late, its cookies stale
            time.sleep(random.uniform(*LATE_BY))
        if refresh:
            response = http.post(f"{base}/auth/refresh", json={}, cookies=cookies, timeout=30)
        else:
            response = http.get(f"{base}/private", cookies=cookies, timeout=30)
        deadline.answered()
        jar.store(response)
        statuses[f"{'refresh' if refresh else 'page'} {response.status_code}"] += 1


def test_a_refresh_storm_on_a_freshly_started_multi_worker_server_signs_nobody_out(
    make_app: AppFactory, tmp_path: Any
) -> None:
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'storm.sqlite3'}"
    app = make_app(LUCIA_DATABASE_URL=url, LUCIA_ACCESS_TOKEN_TTL=STORM_TTL)
    prefix = app.config.get("LUCIA_TABLE_PREFIX", "lucia_")
    with app.app_context():  # signed in before the restart
        user = app.lucia.create_user("email", "ann@example.com")
        session, tokens = app.lucia.create_session(user.user_id)
    app.extensions["lucia"].storage.dispose()
    jar = CookieJar(tokens.access_token, tokens.refresh_token)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(url, prefix, port)
    statuses: Counter[str] = Counter()
    try:
        wait_for_port(port, server)
        deadline = Deadline()
        started = time.monotonic()
        with ThreadPoolExecutor(TABS) as pool:
            tabs = [pool.submit(tab_requests, base, jar, deadline, statuses) for _ in range(TABS)]
            for done in tabs:
                done.result(60)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    took = time.monotonic() - started
    print(f"\nrefresh storm on a fresh {WORKERS}-worker server, {took:.1f} s: {dict(statuses)}")
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        alive = conn.execute(
            sa.select(sa.func.count())
            .select_from(storage.sessions)
            .where(storage.sessions.c.id == session.session_id)
        ).scalar_one()
        rows = conn.execute(
            sa.select(sa.func.count())
            .select_from(storage.refresh_tokens)
            .where(storage.refresh_tokens.c.session_id == session.session_id)
        ).scalar_one()
    assert alive == 1, f"the session was revoked: {dict(statuses)}"
    assert not [status for status in statuses if status.endswith(" 401")], dict(statuses)
    assert sum(statuses.values()) >= TABS  # every tab got answers
    assert rows <= 5
