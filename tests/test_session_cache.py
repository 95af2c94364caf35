"""The session cache (DESIGN §24): a signed-in request served from memory, and every path
that ends or changes a session or its user dropping it here and, on PostgreSQL, in every
other process through ``NOTIFY`` in the same transaction."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import Lucia, current_user, login_required
from flask_lucia.cache.plugin import SessionCache, other_processes

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, AppFactory, Clock, cookie, sign_up
from .conftest import user_columns as suite_columns

ROOT = Path(__file__).resolve().parent.parent
#: A signed-out request to /private: sent to sign in (a page) or 401 (JSON).
SIGNED_OUT = (302, 401)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def cache_of(app: Flask) -> SessionCache:
    cache: SessionCache = app.extensions["lucia_cache"]
    return cache


@pytest.fixture
def mails() -> list[EmailMessage]:
    return []


@pytest.fixture
def app(make_app: AppFactory, mails: list[EmailMessage]) -> Flask:
    """The suite's app with the cache on, mails collected instead of sent."""
    lucia = Lucia(user_columns=suite_columns(), send_email=mails.append)
    app = make_app(
        lucia,
        LUCIA_SESSION_CACHE=True,
        LUCIA_SIGN_UP_COLUMNS=["username"],
        LUCIA_MAIL_ADDRESS_PER_MINUTE=None,
        LUCIA_PUBLIC_USER_COLUMNS=["username"],
    )

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user_id": current_user.user_id, "username": current_user.username}

    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


@pytest.fixture
def published(app: Flask) -> Iterator[Callable[[], list[str]]]:
    """The payloads another process would hear on the app's channel (PostgreSQL), read
    on a connection of the test's own; on SQLite, nothing is published."""
    if not TEST_DATABASE_URL:
        yield list
        return
    import psycopg
    from psycopg import sql

    url = sa.engine.make_url(TEST_DATABASE_URL).set(drivername="postgresql")
    conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(cache_of(app).channel)))
    heard: list[str] = []

    def read() -> list[str]:
        heard.extend(n.payload for n in conn.notifies(timeout=0.2))
        return heard

    yield read
    conn.close()


def cached_request(client: FlaskClient) -> dict[str, Any]:
    """Sign up Ann (username ann) and make her session one the cache holds."""
    sign_up(client, username="ann")
    cache = cache_of(client.application)
    assert client.get("/private").status_code == 200  # the first sight keeps the row
    wait_for(lambda: cache.on)
    for _ in range(2):
        answer = client.get("/private")
    hits = cache.hits
    assert answer.status_code == 200 and len(cache) == 1
    assert client.get("/private").status_code == 200 and cache.hits == hits + 1
    return dict(answer.json)


def assert_dropped(client: FlaskClient, published: Callable[[], list[str]], name: str) -> None:
    """The change was forgotten here and, on PostgreSQL, published naming ``name``."""
    assert len(cache_of(client.application)) == 0
    if TEST_DATABASE_URL:
        wait_for(lambda: name in published(), 2)


def ann_id(client: FlaskClient) -> str:
    return str(client.get("/auth/session").json["user"]["user_id"])


def session_id(app: Flask, user_id: str) -> str:
    with app.app_context():
        return app.lucia.get_user_sessions(user_id)[0].session_id  # type: ignore[attr-defined]


# -- the request path ----------------------------------------------------------------


def test_the_cache_is_off_by_default(make_app: AppFactory) -> None:
    app = make_app()
    assert app.extensions["lucia"].session_cache is None and "lucia_cache" not in app.extensions


def test_a_cached_request_runs_no_query(
    client: FlaskClient, queries: list[str], app: Flask
) -> None:
    sign_up(client)
    client.get("/private")
    wait_for(lambda: cache_of(app).on)
    client.get("/private")  # kept now, if the first one came before the cache was on
    queries.clear()
    assert client.get("/private").status_code == 200
    assert queries == []


def test_a_miss_is_the_one_query_of_today(
    client: FlaskClient, queries: list[str], app: Flask
) -> None:
    sign_up(client)
    wait_for(lambda: cache_of(app).mark() is not None)
    queries.clear()
    assert client.get("/private").status_code == 200
    assert len(queries) == 1 and queries[0].lstrip().upper().startswith("SELECT")


def test_the_first_use_of_a_rotated_access_token_still_writes(
    client: FlaskClient, app: Flask
) -> None:
    cached_request(client)
    assert client.post("/auth/refresh").status_code == 200
    assert client.get("/private").status_code == 200
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        used = conn.execute(sa.select(storage.access_tokens.c.used_at)).scalars().all()
    assert len(used) == 1 and used[0] is not None


def test_a_kept_session_is_forgotten_after_the_ttl(
    client: FlaskClient, app: Flask, clock: Clock, queries: list[str]
) -> None:
    cached_request(client)
    clock.advance(29)
    queries.clear()
    client.get("/private")
    assert queries == []
    clock.advance(2)  # past LUCIA_SESSION_CACHE_TTL (30 s), within the access token's life
    client.get("/private")
    assert len(queries) == 1


def test_a_kept_session_never_outlives_its_access_token(make_app: AppFactory, clock: Clock) -> None:
    app = make_app(LUCIA_SESSION_CACHE=True, LUCIA_ACCESS_TOKEN_TTL=10)
    with app.app_context():
        lucia = app.lucia  # type: ignore[attr-defined]
        user = lucia.create_user("email", "ann@example.com", password=PASSWORD)
        _, tokens = lucia.create_session(user.user_id)
        wait_for(lambda: cache_of(app).mark() is not None)
        lucia.validate_access_token(tokens.access_token)
        assert len(cache_of(app)) == 1
        clock.advance(11)
        with pytest.raises(Exception, match="AUTH_INVALID_ACCESS_TOKEN"):
            lucia.validate_access_token(tokens.access_token)


# -- every path that ends or changes a session or its user ---------------------------


def test_sign_out_drops_the_session(client: FlaskClient, published: Any, app: Flask) -> None:
    cached_request(client)
    access = cookie(client, "lucia_access_token")
    sid = session_id(app, ann_id(client))
    assert client.post("/auth/sign-out").status_code == 200
    assert_dropped(client, published, f"s:{sid}")
    answer = client.get("/private", headers={"Authorization": f"Bearer {access}"})
    assert answer.status_code in SIGNED_OUT


def second_device(app: Flask, user_id: str) -> tuple[FlaskClient, dict[str, str], str]:
    """Another session of the user, held in the cache: its client, header and id."""
    with app.app_context():
        session, tokens = app.lucia.create_session(user_id)  # type: ignore[attr-defined]
    other = app.test_client()
    bearer = {"Authorization": f"Bearer {tokens.access_token}"}
    for _ in range(2):
        assert other.get("/private", headers=bearer).status_code == 200
    return other, bearer, session.session_id


def test_revoking_a_device_drops_it(client: FlaskClient, published: Any, app: Flask) -> None:
    cached_request(client)
    other, bearer, target = second_device(app, ann_id(client))
    assert len(cache_of(app)) == 2
    assert client.post(f"/auth/sessions/{target}/revoke").status_code < 400
    assert other.get("/private", headers=bearer).status_code in SIGNED_OUT
    assert client.get("/private").status_code == 200
    if TEST_DATABASE_URL:
        wait_for(lambda: f"s:{target}" in published(), 2)


def test_invalidating_a_token_drops_its_session(
    client: FlaskClient, published: Any, app: Flask
) -> None:
    cached_request(client)
    sid = session_id(app, ann_id(client))
    with app.app_context():
        app.lucia.invalidate_session(cookie(client, "lucia_access_token"))  # type: ignore[attr-defined]
    assert_dropped(client, published, f"s:{sid}")
    assert client.get("/private").status_code in SIGNED_OUT


def test_signing_out_everywhere_drops_every_session_of_the_user(
    client: FlaskClient, published: Any, app: Flask
) -> None:
    cached_request(client)
    user_id = ann_id(client)
    other, bearer, _ = second_device(app, user_id)
    with app.app_context():
        app.lucia.invalidate_all_user_sessions(user_id)  # type: ignore[attr-defined]
    assert_dropped(client, published, f"u:{user_id}")
    assert other.get("/private", headers=bearer).status_code in SIGNED_OUT


def test_a_password_change_drops_the_other_sessions(
    client: FlaskClient, published: Any, app: Flask
) -> None:
    cached_request(client)
    user_id = ann_id(client)
    other, bearer, _ = second_device(app, user_id)
    with app.app_context():
        app.lucia.update_user_password(user_id, "a new password here")  # type: ignore[attr-defined]
    assert_dropped(client, published, f"u:{user_id}")
    assert other.get("/private", headers=bearer).status_code in SIGNED_OUT


def test_a_password_reset_drops_every_session(
    client: FlaskClient, published: Any, app: Flask, mails: list[EmailMessage]
) -> None:
    cached_request(client)
    user_id = ann_id(client)
    with app.test_request_context():
        app.lucia.send_password_reset(user_id)  # type: ignore[attr-defined]
    body = mails[-1].get_body(("plain",))
    assert body is not None
    token = re.search(r"/reset-password/([\w-]+)", body.get_content())
    assert token is not None
    with app.test_request_context():
        app.extensions["lucia_email"].reset_password(token.group(1), "a new password here")
    assert_dropped(client, published, f"u:{user_id}")
    assert client.get("/private").status_code in SIGNED_OUT


def test_a_reused_refresh_token_drops_the_session(
    client: FlaskClient, published: Any, app: Flask, clock: Clock
) -> None:
    cached_request(client)
    sid = session_id(app, ann_id(client))
    stolen = cookie(client, "lucia_refresh_token")
    assert client.post("/auth/refresh").status_code == 200
    clock.advance(31)  # past the grace
    client.get("/private")
    client.get("/private")  # the new pair used, and kept
    assert len(cache_of(app)) == 1
    with app.app_context():
        auth = app.extensions["lucia"]
        with pytest.raises(Exception, match="reused"):
            auth.refresh(stolen)
    assert_dropped(client, published, f"s:{sid}")
    assert client.get("/private").status_code in SIGNED_OUT


def test_deleting_the_user_drops_its_sessions(
    client: FlaskClient, published: Any, app: Flask
) -> None:
    cached_request(client)
    user_id = ann_id(client)
    with app.app_context():
        app.lucia.delete_user(user_id)  # type: ignore[attr-defined]
    assert_dropped(client, published, f"u:{user_id}")
    assert client.get("/private").status_code in SIGNED_OUT


def test_turning_a_second_factor_on_or_off_drops_the_users_sessions(
    client: FlaskClient, published: Any, app: Flask, clock: Clock
) -> None:
    import pyotp

    cached_request(client)
    user_id = ann_id(client)
    secret = client.post("/auth/two-factor", json={}).json["secret"]
    code = str(pyotp.TOTP(secret).at(int(clock.now)))
    assert client.post("/auth/two-factor", json={"code": code, "secret": secret}).status_code == 200
    assert_dropped(client, published, f"u:{user_id}")
    client.get("/private")
    client.get("/private")
    assert len(cache_of(app)) == 1
    assert client.delete("/auth/two-factor").status_code < 400
    assert_dropped(client, published, f"u:{user_id}")


def test_changing_cached_user_columns_is_seen_at_once(
    client: FlaskClient, published: Any, app: Flask
) -> None:
    assert cached_request(client)["username"] == "ann"
    user_id = ann_id(client)
    with app.app_context():
        app.lucia.update_user_data(user_id, {"username": "anna"})  # type: ignore[attr-defined]
    assert_dropped(client, published, f"u:{user_id}")
    assert client.get("/private").json["username"] == "anna"


def test_re_keying_a_user_is_seen_at_once(client: FlaskClient, published: Any, app: Flask) -> None:
    cached_request(client)
    user_id = ann_id(client)
    with app.app_context():
        app.lucia.update_user_provider_id(user_id, "email", "ann@new.example")  # type: ignore[attr-defined]
    assert_dropped(client, published, f"u:{user_id}")


def test_re_authenticating_makes_the_kept_session_fresh_at_once(
    client: FlaskClient, published: Any, app: Flask, clock: Clock
) -> None:
    cached_request(client)
    clock.advance(11 * 60)  # past LUCIA_FRESH_FOR
    client.get("/private")
    client.get("/private")
    assert client.get("/auth/session").json
    sid = session_id(app, ann_id(client))
    assert client.post("/auth/confirm", json={"password": PASSWORD}).status_code == 200
    assert_dropped(client, published, f"s:{sid}")


def test_the_cli_revoke_drops_the_users_sessions(
    client: FlaskClient, published: Any, app: Flask
) -> None:
    cached_request(client)
    user_id = ann_id(client)
    result = app.test_cli_runner().invoke(args=["lucia", "revoke", "ann@example.com"])
    assert result.exit_code == 0, result.output
    assert_dropped(client, published, f"u:{user_id}")
    assert client.get("/private").status_code in SIGNED_OUT


# -- SQLite: one process only ----------------------------------------------------------


def test_several_gunicorn_workers_are_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/23.0.0")
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-w", "4", "app:app"])
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    assert other_processes() == "gunicorn runs 4 workers"
    monkeypatch.setattr(sys, "argv", ["gunicorn", "--workers=1", "app:app"])
    assert other_processes() is None


def test_sqlite_start_up_warns_when_several_processes_serve_the_app(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_app(LUCIA_SESSION_CACHE=True, LUCIA_DATABASE_URL=None, LUCIA_TABLE_PREFIX="lucia_")
    assert any("correct in one process only" in str(w.message) for w in caught)


def test_a_ttl_that_is_not_positive_is_refused(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match="LUCIA_SESSION_CACHE_TTL"):
        make_app(LUCIA_SESSION_CACHE=True, LUCIA_SESSION_CACHE_TTL=0)


# -- PostgreSQL: other processes hear it (run under LUCIA_TEST_DATABASE_URL) ------------

if TEST_DATABASE_URL:

    @pytest.fixture
    def server(app: Flask) -> Iterator[str]:
        """The same app in another process, on the same tables: its base URL."""
        with app.app_context():
            app.extensions["lucia"].storage.engine  # noqa: B018 - creates the tables
        prefix = app.config["LUCIA_TABLE_PREFIX"]
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.cache_server", TEST_DATABASE_URL, prefix],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        yield f"http://127.0.0.1:{process.stdout.readline().strip()}"
        process.terminate()
        process.wait(10)

    def status(url: str, token: str) -> int:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def remote_cache(url: str) -> dict[str, Any]:
        import json

        with urllib.request.urlopen(f"{url}/cache", timeout=5) as answer:
            found: dict[str, Any] = json.load(answer)
            return found

    def test_a_revoke_in_one_process_is_refused_in_another_within_100_ms(
        app: Flask, server: str
    ) -> None:
        with app.app_context():
            lucia = app.lucia  # type: ignore[attr-defined]
            user = lucia.create_user("email", "ann@example.com", password=PASSWORD)
            _, tokens = lucia.create_session(user.user_id)
        access = tokens.access_token
        status(f"{server}/private", access)
        wait_for(lambda: remote_cache(server)["on"])
        for _ in range(3):
            assert status(f"{server}/private", access) == 200
        assert remote_cache(server)["hits"] >= 2  # served from the other process's memory
        with app.app_context():
            started = time.monotonic()
            lucia.invalidate_session(access)
        while status(f"{server}/private", access) != 401:
            assert time.monotonic() - started < 1
        assert time.monotonic() - started < 0.1

    def test_a_killed_listener_connection_empties_the_cache_until_it_is_back(
        client: FlaskClient, app: Flask
    ) -> None:
        cached_request(client)
        cache = cache_of(app)
        assert cache.listener is not None
        killed = cache.listener.backend_pid
        storage = app.extensions["lucia"].storage
        with storage.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})
        listener = cache.listener
        wait_for(lambda: listener.backend_pid != killed, 2)
        assert len(cache) == 0
        hits = cache.hits
        assert client.get("/private").status_code == 200 and cache.hits == hits  # a miss
        wait_for(lambda: cache.on and listener.backend_pid not in (None, killed), 10)
