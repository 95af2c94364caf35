"""A second process for the session cache tests: the suite's app on the given database and
table prefix with ``LUCIA_SESSION_CACHE`` on, served on a free port (printed first).

    python -m tests.cache_server DATABASE_URL TABLE_PREFIX
"""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from flask_lucia import Lucia, current_user, login_required

from .conftest import user_columns


def create_app(url: str, prefix: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret",
        LUCIA_DATABASE_URL=url,
        LUCIA_TABLE_PREFIX=prefix,
        LUCIA_CREATE_TABLES=False,
        LUCIA_SESSION_CACHE=True,
    )
    Lucia(app, user_columns=user_columns())

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user_id": current_user.user_id}

    @app.get("/cache")
    def cache() -> dict[str, Any]:
        kept = app.extensions["lucia_cache"]
        return {"on": kept.on, "hits": kept.hits, "size": len(kept)}

    return app


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, create_app(sys.argv[1], sys.argv[2]), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
