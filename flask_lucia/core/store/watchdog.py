"""The watchdog that cuts a database connection whose host acknowledges but never answers
(DESIGN §18: ``LUCIA_DATABASE_TIMEOUT`` bounds every wait on the database).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, ClassVar

import sqlalchemy as sa

log = logging.getLogger(__name__)


def watchdog_grace(timeout: float) -> float:
    """How long after the statement timeout the watchdog gives up on a call: long enough
    for a live server's own cancel (a clean error, the connection kept) to arrive first."""
    return min(1.0, timeout / 2)


#: How long a watchdog thread with nothing to watch waits before it ends (the next
#: watched call starts another).
WATCHDOG_IDLE = 30.0


class DatabaseUnresponsive(sa.exc.TimeoutError):
    """A call on a pooled connection got no answer within the watchdog's limit: its
    connection was cut (never pooled again). A ``TimeoutError``, so it maps to 503."""


class Watchdog:
    """Cuts the socket of a database call that outlives ``limit`` seconds.

    The server's ``statement_timeout`` needs a server that runs; a frozen or partitioned
    host leaves the client waiting on a socket that may stay open for ever (the kernel
    of a stopped process, or a proxy that stopped relaying, still acknowledges). The
    watchdog bounds that wait on the client: each watched call registers a deadline
    (``arm``) and withdraws it when it returns (``disarm``); one thread per engine
    sleeps until the oldest deadline, and when a call is still registered past it, shuts
    its socket down. The blocked driver then sees end of file at once and raises, and
    the connection is closed and discarded.

    A call costs two rounds of an uncontended lock and an ordered-dict insert and pop:
    no thread, no timer, no wake-up. Every deadline is now + ``limit``, so they expire in
    the order they are armed and the thread only ever looks at the oldest.
    """

    _all: ClassVar[weakref.WeakSet[Watchdog]] = weakref.WeakSet()

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._reset()
        Watchdog._all.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._calls: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, connection: Any) -> int:
        """Start watching a call on the DBAPI ``connection``; the token for ``disarm``."""
        deadline = time.monotonic() + self.limit
        with self._lock:
            token = self._next = self._next + 1
            self._calls[token] = (deadline, connection)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="flask-lucia database watchdog", daemon=True
                )
                self._thread.start()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True when the watchdog cut the connection (it is dead)."""
        with self._lock:
            return self._calls.pop(token, None) is None

    def _run(self) -> None:
        # Never notified (that would cost a thread wake-up per query when calls are rare):
        # with nothing to watch it sleeps ``limit``, and a call armed meanwhile has a
        # deadline at least that far off, so it is never looked at late.
        calls = self._calls
        idle_since = None
        with self._lock:
            while True:
                now = time.monotonic()
                if not calls:
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= WATCHDOG_IDLE:
                        self._thread = None
                        return
                    self._wake.wait(self.limit)
                    continue
                idle_since = None
                token, (deadline, connection) = next(iter(calls.items()))
                if deadline > now:
                    self._wake.wait(deadline - now)
                    continue
                del calls[token]
                failure = _cut(connection)
                self._lock.release()  # log without holding up calls
                try:
                    if failure is None:
                        log.warning("flask-lucia: %s: its connection was cut", self.message)
                    else:
                        log.warning("flask-lucia: cannot cut a database connection: %r", failure)
                finally:
                    self._lock.acquire()

    def watch(self, dialect: sa.Dialect) -> None:
        """Watch every call SQLAlchemy makes through ``dialect`` (one engine's): statements,
        commits, rollbacks (also the pool's reset on return) and the pre-ping."""
        dialect.lucia_watchdog = self  # type: ignore[attr-defined]  # for Precompiled
        dbapi_error = dialect.loaded_dbapi.OperationalError

        def watched(name: str, on_cursor: bool) -> None:
            method = getattr(dialect, name)

            def call(target: Any, *args: Any, **kwargs: Any) -> Any:
                connection = target.connection if on_cursor else target
                connection = getattr(connection, "dbapi_connection", connection)
                token = self.arm(connection)
                try:
                    return method(target, *args, **kwargs)
                finally:
                    if self.disarm(token):
                        connection.close()  # closed: the dialect sees a disconnect
                        # Raised from ``finally``: replaces the driver's end-of-file error.
                        raise dbapi_error(self.message)

            setattr(dialect, name, call)

        for name in ("do_execute", "do_execute_no_params", "do_executemany"):
            watched(name, on_cursor=True)
        for name in ("do_commit", "do_rollback"):
            watched(name, on_cursor=False)
        ping = dialect.do_ping

        def do_ping(connection: Any) -> bool:
            token = self.arm(connection)
            try:
                return ping(connection)
            finally:
                if self.disarm(token):
                    connection.close()
                    # Not a driver error: the pool would reconnect at once and wait out
                    # the connect timeout too; this fails the checkout (the pool discards
                    # the connection) within the one limit.
                    raise DatabaseUnresponsive(self.message)

        setattr(dialect, "do_ping", do_ping)  # noqa: B010

    @property
    def message(self) -> str:
        return f"the database did not answer within {self.limit:g} s"


def _cut(connection: Any) -> Exception | None:
    """Shut down a DBAPI connection's socket: a thread blocked reading it wakes with end
    of file. Shuts down a duplicate descriptor, so the driver's own is never closed here.
    Returns what prevented it, if anything."""
    try:
        duplicate = socket.socket(fileno=os.dup(connection.fileno()))
    except Exception as exc:  # whatever the driver raises, the watchdog keeps watching
        return exc
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected
    finally:
        duplicate.close()
    return None


def _watchdogs_after_fork() -> None:
    """A forked child has none of its parent's threads: start its watchdogs afresh."""
    for watchdog in list(Watchdog._all):
        watchdog._reset()


os.register_at_fork(after_in_child=_watchdogs_after_fork)
