"""A database host that stops answering: 503 within about LUCIA_DATABASE_TIMEOUT, then recovery.

A real PostgreSQL connection goes through a proxy that can freeze: it stops relaying bytes
both ways but keeps every socket open, as a frozen server process or a stalled middlebox
does (the kernel still acknowledges, so nothing on the TCP level notices). The server can
then enforce no ``statement_timeout``: only the client can bound the wait.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from .conftest import ORIGIN, PASSWORD, TEST_DATABASE_URL, AppFactory, sign_up

#: The server the proxy relays to: the suite's, else a local one when it answers.
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

#: LUCIA_DATABASE_TIMEOUT in these tests, and how much later than it an answer may come.
TIMEOUT, SLACK = 1, 2


def _server_url() -> sa.URL:
    url = sa.engine.make_url(TEST_DATABASE_URL or DEFAULT_URL)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs PostgreSQL")
    if not TEST_DATABASE_URL:
        try:
            socket.create_connection((url.host or "127.0.0.1", url.port or 5432), 1).close()
        except OSError:
            pytest.skip(f"no PostgreSQL at {url.host}:{url.port or 5432}")
    return url


class FreezingProxy:
    """A TCP relay on 127.0.0.1 that ``freeze()`` stops (sockets kept open) and ``thaw()``
    restarts. Its threads end at ``stop()`` or after ``lifetime`` seconds, whichever first."""

    def __init__(self, upstream: tuple[str, int], lifetime: float = 60) -> None:
        self.upstream = upstream
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.deadline = time.monotonic() + lifetime
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _running(self) -> bool:
        return not self.stopped.is_set() and time.monotonic() < self.deadline

    def _accept(self) -> None:
        while self._running():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(source, target), daemon=True)
                self.threads.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while self._running():
                readable, _, _ = select.select([source], [], [], 0.02)
                if not readable or self.frozen.is_set():  # frozen: read nothing, send nothing
                    if readable:
                        time.sleep(0.01)
                    continue
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):  # one side ended: end the other, as a relay does
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        self.frozen.set()
        time.sleep(0.05)  # a relay that was mid-send finishes it

    def thaw(self) -> None:
        self.frozen.clear()

    def stop(self) -> None:
        self.frozen.clear()
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=2)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy() -> Iterator[FreezingProxy]:
    """A freezing proxy in front of the test server (set up before, torn down after the
    apps, whose teardown still goes through it)."""
    url = _server_url()
    relay = FreezingProxy((url.host or "127.0.0.1", url.port or 5432))
    yield relay
    relay.stop()


def _timed(call: Callable[[], int], limit: float) -> tuple[int | None, float]:
    """``call``'s status and how long it took; None when it is still waiting after
    ``limit`` seconds (it is left to finish on its own, after the thaw)."""
    statuses: list[int] = []
    worker = threading.Thread(target=lambda: statuses.append(call()), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=limit)
    return (statuses[0] if statuses else None), round(time.monotonic() - started, 2)


def _drop(url: sa.URL, prefix: str) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine, only=lambda name, _: name.startswith(prefix))
    metadata.drop_all(engine)
    engine.dispose()


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "no-pre-ping"])
def test_a_frozen_database_host_answers_503_within_the_timeout_and_the_pool_recovers(
    proxy: FreezingProxy, make_app: AppFactory, pre_ping: bool
) -> None:
    server = _server_url()
    prefix = f"fz{secrets.token_hex(3)}_"
    app = make_app(
        LUCIA_DATABASE_URL=server.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        ),
        LUCIA_TABLE_PREFIX=prefix,
        LUCIA_DATABASE_TIMEOUT=TIMEOUT,
        LUCIA_ENGINE_OPTIONS={"pool_pre_ping": pre_ping},
    )
    limit = TIMEOUT + SLACK
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    try:
        sign_up(client)  # the pool is warm: its connection goes through the proxy
        assert client.get("/auth/session").status_code == 200

        def session() -> int:  # the request path: the hook's one query
            return client.get("/auth/session").status_code

        def sign_out() -> int:
            return client.post("/auth/sign-out", json={}).status_code

        def sign_in(by: FlaskClient = client) -> int:
            credentials = {"identifier": "ann@example.com", "password": PASSWORD}
            return by.post("/auth/sign-in", json=credentials).status_code

        # Without cookies, so the hook's read does not come first: the throttle's write
        # transaction does (SQLAlchemy's path, not the request path's raw cursor).
        stranger = app.test_client()
        stranger.environ_base["HTTP_ORIGIN"] = ORIGIN

        proxy.freeze()
        read = _timed(session, limit)
        proxy.thaw()
        after_read = [session(), session()]

        proxy.freeze()
        write = _timed(lambda: sign_in(stranger), limit)
        proxy.thaw()
        after_write = [session(), sign_out(), sign_in(), session(), sign_in(stranger)]

        assert (read[0], write[0]) == (503, 503), f"request path {read}, write {write}"
        assert read[1] < limit and write[1] < limit, f"request path {read}, write {write}"
        assert after_read == [200, 200]
        assert after_write == [200, 200, 200, 200, 200]
    finally:
        proxy.thaw()
        _drop(server, prefix)


class _Connection:
    """A DBAPI connection as the watchdog sees one: a socket behind ``fileno()``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


def test_the_watchdog_cuts_only_a_call_that_outlives_its_limit() -> None:
    from flask_lucia.core.store.watchdog import Watchdog

    watchdog = Watchdog(0.2)
    quick, quick_peer = socket.socketpair()
    slow, slow_peer = socket.socketpair()
    with quick, quick_peer, slow, slow_peer:
        assert watchdog.disarm(watchdog.arm(_Connection(quick))) is False  # answered in time
        token = watchdog.arm(_Connection(slow))
        slow.settimeout(5)
        started = time.monotonic()
        assert slow.recv(1) == b""  # the blocked read wakes with end of file
        waited = time.monotonic() - started
        assert watchdog.disarm(token) is True  # the caller learns its connection is dead
        assert 0.15 < waited < 1.5
        quick.sendall(b"x")  # the call that returned in time kept its connection
        assert quick_peer.recv(1) == b"x"


def test_server_connections_carry_keepalives_and_a_tcp_user_timeout() -> None:
    from flask_lucia.core.store.engine import create_engine

    url = _server_url().render_as_string(hide_password=False)
    engine = create_engine(url, {"connect_args": {"keepalives_idle": 7}}, 2)
    try:
        with engine.connect() as conn:
            dbapi_connection: Any = conn.connection.dbapi_connection
            found = {i.keyword.decode(): i.val for i in dbapi_connection.pgconn.info}
    finally:
        engine.dispose()
    assert {key: found[key] for key in ("keepalives", "keepalives_idle", "tcp_user_timeout")} == {
        "keepalives": b"1",
        "keepalives_idle": b"7",  # the app's own connect_args win
        "tcp_user_timeout": b"2000",
    }


def test_waiting_for_a_pooled_connection_is_bounded_by_the_timeout() -> None:
    from sqlalchemy.pool import NullPool

    from flask_lucia.core.store.engine import create_engine

    url = _server_url().render_as_string(hide_password=False)
    engine = create_engine(url, {"pool_size": 1, "max_overflow": 0}, 0.5)
    other = create_engine(url, {"poolclass": NullPool}, 0.5)  # takes no pool_timeout
    try:
        with engine.connect():
            started = time.monotonic()
            with pytest.raises(sa.exc.TimeoutError), engine.connect():
                pass
            waited = time.monotonic() - started
        with other.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        other.dispose()
    assert waited < 2  # the 0.5 s timeout, not the pool's default 30 s
