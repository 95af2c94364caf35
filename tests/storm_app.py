"""An app for tests that run it under a real multi-process server (gunicorn): its database
and table prefix come from the environment (``STORM_DATABASE_URL``, ``STORM_TABLE_PREFIX``),
its access tokens live ``STORM_ACCESS_TTL`` seconds, and a worker's first request is
held ``STORM_COLD_DELAY`` seconds before anything reads its cookies (a cold worker that
answers late, as in issue 18: 0.385 s)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from flask import Flask

from flask_lucia import Lucia, current_user, login_required


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="storm-test",
        LUCIA_BASE_URL="http://localhost",  # where links point: never a Host header
        LUCIA_DATABASE_URL=os.environ["STORM_DATABASE_URL"],
        LUCIA_TABLE_PREFIX=os.environ.get("STORM_TABLE_PREFIX", "lucia_"),
        LUCIA_ACCESS_TOKEN_TTL=float(os.environ.get("STORM_ACCESS_TTL", "2")),
        LUCIA_COOKIE_SECURE=False,  # plain HTTP on loopback
    )
    Lucia().init_app(app)  # the suite's user columns stay in the table, unread
    delay = float(os.environ.get("STORM_COLD_DELAY", "0"))
    first = threading.Lock()

    def cold() -> None:
        if first.acquire(blocking=False):  # once per worker process, never released
            time.sleep(delay)

    app.before_request_funcs.setdefault(None, []).insert(0, cold)  # before flask-lucia's

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user_id": current_user.user_id}

    return app
