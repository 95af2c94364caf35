"""The listener: one dedicated PostgreSQL connection per process, in a daemon thread, that
``LISTEN``\\ s on the app's channel and drops what each notification names.

While it is connected and listening the cache is on; when the connection is lost (the
server restarted, an admin ended it, the network failed a ping) the cache is emptied and
turned off at once, and the thread reconnects with a growing pause. Processes forked
after it started (a preloaded app in gunicorn) start their own on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from flask_lucia.cache.memory import MemoryCache
from flask_lucia.core.store.base import SessionChange

log = logging.getLogger("flask_lucia.cache")

#: Pauses between reconnections: the first, and the longest it doubles up to.
FIRST_PAUSE, LONGEST_PAUSE = 0.05, 5.0
#: How long one wait for notifications lasts, and how often an idle connection is pinged
#: (a host that vanished without closing the connection is found within about this).
WAIT, PING_EVERY = 0.5, 5.0

Connect = Callable[[], Any]  # a psycopg.Connection in autocommit mode


def encode(change: SessionChange) -> str:
    """The payload naming a change: ``s:<session id>``, ``u:<user id>`` or ``*``."""
    if change.session_id is not None:
        return f"s:{change.session_id}"
    if change.user_id is not None:
        return f"u:{change.user_id}"
    return "*"


def decode(payload: str) -> SessionChange:
    """The change a payload names; anything unknown names everything (drop all)."""
    kind, _, key = payload.partition(":")
    if kind == "s" and key:
        return SessionChange(session_id=key)
    if kind == "u" and key:
        return SessionChange(user_id=key)
    return SessionChange()


class Listener:
    """Keeps ``cache`` on exactly while a connection listens on ``channel``."""

    def __init__(self, connect: Connect, channel: str, cache: MemoryCache) -> None:
        self._connect = connect
        self.channel = channel
        self.cache = cache
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopped = threading.Event()
        #: The server process id of the listening connection (tests end it to see a loss).
        self.backend_pid: int | None = None
        _listeners.add(self)

    def ensure_running(self) -> None:
        """Start the thread in this process unless it runs here already (cheap when it does)."""
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            if self._stopped.is_set():
                return
            thread = self._thread
            if thread is not None and self._pid == os.getpid() and thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="lucia-session-cache", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """End the thread within about ``WAIT`` seconds and turn the cache off."""
        self._stopped.set()
        self.cache.turn_off()

    def _run(self) -> None:
        pause = FIRST_PAUSE
        while not self._stopped.is_set():
            try:
                self._listen()
                pause = FIRST_PAUSE
            except Exception as exc:  # any failure: off until a connection listens again
                log.warning("session cache off: listener connection lost (%s)", type(exc).__name__)
            finally:
                self.backend_pid = None
                self.cache.turn_off()
            if self._stopped.wait(pause):
                return
            pause = min(pause * 2, LONGEST_PAUSE)

    def _listen(self) -> None:
        """Connect, listen, turn the cache on, then drop what arrives until a failure."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.backend_pid = conn.info.backend_pid
            self.cache.turn_on()  # empty: whatever was missed while off is forgotten
            pinged = time.monotonic()
            while not self._stopped.is_set():
                for notification in conn.notifies(timeout=WAIT):
                    self.cache.drop(decode(notification.payload))
                if time.monotonic() - pinged >= PING_EVERY:
                    conn.execute("SELECT 1")
                    pinged = time.monotonic()


def connector(engine: Any, timeout: float) -> Connect:
    """How to open the listening connection: the engine's own connection parameters, in
    autocommit, with the engine's bounds on waiting for a dead host."""
    import psycopg

    _, params = engine.dialect.create_connect_args(engine.url)
    params = {key: value for key, value in params.items() if key != "context"}
    seconds = max(1, round(timeout))
    params.setdefault("connect_timeout", seconds)
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", seconds)
    params.setdefault("keepalives_interval", max(1, round(timeout / 3)))
    params.setdefault("keepalives_count", 3)
    params.setdefault("tcp_user_timeout", max(1, int(timeout * 1000)))
    params.setdefault("application_name", "flask-lucia session cache")

    def connect() -> Any:
        return psycopg.connect(autocommit=True, **params)

    return connect


#: Every listener in this process, so a forked child can start its own.
_listeners: weakref.WeakSet[Listener] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A child process has no listener thread: its caches are off until one starts."""
    for listener in list(_listeners):
        listener._thread = None
        listener._lock = threading.Lock()
        listener.backend_pid = None
        listener.cache._lock = threading.Lock()
        listener.cache.turn_off()


os.register_at_fork(after_in_child=_after_fork_in_child)
