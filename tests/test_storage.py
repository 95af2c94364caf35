"""Storage under faults: first use by several processes, dropped connections, hung databases."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lucia import Lucia

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, AppFactory, sign_up

#: Processes meeting an empty database at once, and rounds of that (the review's 6 x 6).
WORKERS, ROUNDS = 6, 6


def _first_request(url: str, prefix: str, barrier: Any, results: Any, index: int) -> None:
    """One worker process: a fresh app whose very first request comes with the others'."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        LUCIA_DATABASE_URL=url,
        LUCIA_TABLE_PREFIX=prefix,
        LUCIA_SIGN_UP_COLUMNS=(),
    )
    Lucia(app)
    client = app.test_client()
    barrier.wait()
    if index % 2:
        response = client.get("/auth/session")
        results.put(("session", response.status_code))
    else:
        response = client.post(
            "/auth/sign-up",
            json={"identifier": f"w{index}@example.com", "password": PASSWORD},
            headers={"Origin": ORIGIN},
        )
        results.put(("sign-up", response.status_code))


def _drop(url: str, prefix: str) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    # Only this test's tables: others in a shared database may vanish while it looks.
    metadata.reflect(engine, only=lambda name, _: name.startswith(prefix))
    metadata.drop_all(engine)
    engine.dispose()


def test_workers_meeting_an_empty_database_at_once_all_succeed(tmp_path: Any) -> None:
    context = multiprocessing.get_context("fork")
    failures: list[tuple[str, int]] = []
    for round_ in range(ROUNDS):
        url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / f'first-use-{round_}.db'}"
        prefix = f"fu{secrets.token_hex(3)}_"
        barrier, results = context.Barrier(WORKERS), context.Queue()
        workers = [
            context.Process(target=_first_request, args=(url, prefix, barrier, results, i))
            for i in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        answers = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        failures += [
            (kind, status)
            for kind, status in answers
            if status != {"session": 401, "sign-up": 201}[kind]
        ]
        if TEST_DATABASE_URL:
            _drop(url, prefix)
    assert failures == [], f"{len(failures)} of {WORKERS * ROUNDS} first requests failed"


def _pooled_connections(app: Flask, count: int) -> list[Any]:
    """Fill the pool with ``count`` connections; the DBAPI connections behind them."""
    with app.app_context():
        engine = app.extensions["lucia"].storage.engine
    held = [engine.raw_connection() for _ in range(count)]
    dbapi = [connection.dbapi_connection for connection in held]
    for connection in held:
        connection.close()  # back to the pool, still open
    return dbapi


def _drop_connections(dbapi_connections: list[Any]) -> None:
    """Cut the connections from the database's side, as a restart or a proxy would."""
    if TEST_DATABASE_URL:
        pids = [conn.info.backend_pid for conn in dbapi_connections]
        with sa.create_engine(TEST_DATABASE_URL).connect() as admin:
            for pid in pids:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    else:
        for conn in dbapi_connections:
            conn.close()


def _signed_in_client(app: Flask) -> Any:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client)
    return client


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "no-pre-ping"])
def test_dropped_connections_fail_no_request(make_app: AppFactory, pre_ping: bool) -> None:
    app = make_app(LUCIA_ENGINE_OPTIONS={"pool_size": 5, "pool_pre_ping": pre_ping})
    client = _signed_in_client(app)
    _drop_connections(_pooled_connections(app, 5))

    statuses = [client.get("/auth/session").status_code for _ in range(5)]
    statuses += [
        client.post(
            "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [200] * 8


def test_the_default_engine_pings_connections_on_servers_only(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        engine = app.extensions["lucia"].storage.engine
    assert engine.pool._pre_ping is bool(TEST_DATABASE_URL)


def test_a_hung_database_answers_503_after_the_timeout(make_app: AppFactory) -> None:
    app = make_app(LUCIA_DATABASE_TIMEOUT=1)
    client = _signed_in_client(app)
    storage = app.extensions["lucia"].storage
    with app.app_context():
        engine = storage.engine
    blocker = sa.create_engine(TEST_DATABASE_URL or str(engine.url))
    statuses: list[int] = []
    with blocker.connect() as conn:  # holds every session row's lock, as a stuck writer would
        if TEST_DATABASE_URL:
            conn.execute(sa.text(f"LOCK TABLE {storage.sessions.name} IN ACCESS EXCLUSIVE MODE"))
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        worker = threading.Thread(
            target=lambda: statuses.append(client.post("/auth/sign-out", json={}).status_code)
        )
        started = time.monotonic()
        worker.start()
        worker.join(timeout=8)
        waited = time.monotonic() - started
        conn.rollback()
    blocker.dispose()
    assert statuses == [503]
    assert waited < 5  # the 1 s timeout, not SQLite's 5 s default or a server's endless wait
