"""The session cache plugs in (DESIGN §24): ``LUCIA_SESSION_CACHE`` gives the core a
``MemoryCache`` for the request query's rows, and the store a listener of session and
user changes that drops them here and publishes them (``pg_notify``, in the writing
transaction) to every other process on the database.
"""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Connection

from flask_lucia.cache.listener import Listener, connector, encode
from flask_lucia.cache.memory import MemoryCache
from flask_lucia.config import to_ms
from flask_lucia.core.auth import Auth
from flask_lucia.core.store.base import SessionChange

#: The longest channel name PostgreSQL takes (an identifier).
MAX_CHANNEL = 63


class SessionCache(MemoryCache):
    """An app's cache in this process, turned on at its first use: on PostgreSQL by the
    listener, on SQLite at once (one process only), on other databases never."""

    def __init__(self, auth: Auth, ttl: int, channel: str, timeout: float) -> None:
        super().__init__(ttl)
        self.auth = auth
        self.timeout = timeout
        self.channel = channel
        self.listener: Listener | None = None
        self.backend: str | None = None
        self.when_off = self._start
        self._notify = sa.text("SELECT pg_notify(:channel, :payload)")

    def _start(self) -> None:
        """First use in this process: find the database and turn the cache on, or have the
        listener do it once it listens (it runs, or is restarted, here)."""
        if self.listener is not None:
            self.listener.ensure_running()
            return
        if self.backend is not None:
            return  # SQLite turned off (a test's stop), or a database without NOTIFY
        storage = self.auth.storage
        engine = storage.engine
        self.backend = engine.dialect.name
        if self.backend == "postgresql":
            self.listener = Listener(connector(engine, self.timeout), self.channel, self)
            self.listener.ensure_running()
        elif self.backend == "sqlite":
            warn_if_shared()
            self.turn_on()
        else:
            warnings.warn(
                f"LUCIA_SESSION_CACHE needs PostgreSQL (or SQLite in one process); "
                f"it stays off on {self.backend}",
                RuntimeWarning,
                stacklevel=2,
            )

    def stop(self) -> None:
        """Turn the cache off for good in this process (tests, shutdown)."""
        self.when_off = None
        if self.listener is not None:
            self.listener.stop()
        self.turn_off()

    # -- the store's session listener -------------------------------------------------

    def changing(self, conn: Connection, change: SessionChange) -> None:
        """In the writing transaction: drop it here, and tell every listening process when
        (and only if) the transaction commits."""
        self.drop(change)
        if conn.dialect.name == "postgresql":
            conn.execute(self._notify, {"channel": self.channel, "payload": encode(change)})

    def changed(self, change: SessionChange) -> None:
        """After the transaction: drop it again, for a request of this process that read
        the row before the commit and kept it after the first drop."""
        self.drop(change)


def init_app(app: Flask, auth: Auth) -> SessionCache | None:
    """With ``LUCIA_SESSION_CACHE``: the app's cache (``app.extensions["lucia_cache"]``)."""
    config = app.config
    if not config["LUCIA_SESSION_CACHE"]:
        return None
    ttl = to_ms(config["LUCIA_SESSION_CACHE_TTL"], "LUCIA_SESSION_CACHE_TTL")
    if ttl <= 0:
        raise ValueError("LUCIA_SESSION_CACHE_TTL must be positive")
    channel = f"{config['LUCIA_TABLE_PREFIX']}session_cache"[-MAX_CHANNEL:]
    timeout = to_ms(config["LUCIA_DATABASE_TIMEOUT"], "LUCIA_DATABASE_TIMEOUT") / 1000
    cache = SessionCache(auth, ttl, channel, timeout)
    auth.session_cache = cache
    auth.storage.session_listeners.append(cache)
    app.extensions["lucia_cache"] = cache
    url = config["LUCIA_DATABASE_URL"]
    if "SQLALCHEMY_DATABASE_URI" not in config and (
        url is None or sa.engine.make_url(url).get_backend_name() == "sqlite"
    ):
        warn_if_shared()
    return cache


def warn_if_shared() -> None:
    """Warn when this SQLite app's cache runs in several processes (it cannot hear the
    others' changes): see ``other_processes``."""
    reason = other_processes()
    if reason is not None:
        warnings.warn(
            f"LUCIA_SESSION_CACHE on SQLite is correct in one process only, and {reason}: "
            "a session ended in one process stays valid in the others for up to "
            "LUCIA_SESSION_CACHE_TTL. Use PostgreSQL, one process, or turn the cache off.",
            RuntimeWarning,
            stacklevel=3,
        )


def other_processes() -> str | None:
    """Why this process looks like one of several serving the app, or None.

    A heuristic (docs/performance.rst): gunicorn (``SERVER_SOFTWARE``) with more than one
    worker in its arguments, ``GUNICORN_CMD_ARGS`` or ``WEB_CONCURRENCY``; uWSGI with
    more than one process; or ``WEB_CONCURRENCY`` above 1 for any server.
    """
    concurrency = _int(os.environ.get("WEB_CONCURRENCY"))
    if concurrency is not None and concurrency > 1:
        return f"WEB_CONCURRENCY is {concurrency}"
    if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn"):
        args = sys.argv[1:] + shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))
        workers = _workers(args)
        if workers is not None and workers > 1:
            return f"gunicorn runs {workers} workers"
    uwsgi: Any = sys.modules.get("uwsgi")
    processes = getattr(uwsgi, "numproc", 1) if uwsgi is not None else 1
    if isinstance(processes, int) and processes > 1:
        return f"uWSGI runs {processes} processes"
    return None


def _workers(args: list[str]) -> int | None:
    """The worker count in gunicorn arguments (``-w N``, ``--workers N``, ``--workers=N``)."""
    found = None
    for index, arg in enumerate(args):
        if arg in ("-w", "--workers") and index + 1 < len(args):
            found = _int(args[index + 1])
        elif arg.startswith("--workers="):
            found = _int(arg.partition("=")[2])
        elif arg.startswith("-w") and len(arg) > 2:
            found = _int(arg[2:])
    return found


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
