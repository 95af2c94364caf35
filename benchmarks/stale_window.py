"""The stale window of the session cache (DESIGN §24): how long a session revoked in one
process is still served by others. gunicorn runs the ``lucia-cached`` app with 4 workers
on PostgreSQL; each trial makes a session, has every worker keep it (many requests on new
connections), ends it from this process, and polls until every worker refuses it. The
window of a trial: from the revoking commit to the last answer that still served it.

    python benchmarks/stale_window.py --database postgresql+psycopg://... [--trials 10]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.apps import BASE_URL, IDENTIFIER, PROVIDER, drop, seed  # noqa: E402
from benchmarks.protected_http import serve  # noqa: E402

#: Refusals in a row (on new connections, so spread over the workers) that end a trial.
REFUSALS = 40


def status(port: int, token: str) -> int:
    """The status of GET /protected with ``token``, on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/protected", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def trial(lucia: object, port: int, warm: int) -> float:
    """One revocation: the milliseconds a worker still served the session after it."""
    user = lucia.get_user_by_provider_id(PROVIDER, IDENTIFIER)  # type: ignore[attr-defined]
    _, tokens = lucia.create_session(user.user_id)  # type: ignore[attr-defined]
    token = tokens.access_token
    for _ in range(warm):
        if status(port, token) != 200:
            raise SystemExit("the new session was refused before its revocation")
    lucia.invalidate_session(token)  # type: ignore[attr-defined]
    revoked = time.perf_counter()
    last_served, refused = revoked, 0
    while refused < REFUSALS:
        if status(port, token) == 200:
            last_served, refused = time.perf_counter(), 0
        else:
            refused += 1
        if time.perf_counter() - revoked > 60:
            raise SystemExit("a worker kept serving the revoked session for a minute")
    return (last_served - revoked) * 1000


def main() -> int:
    from flask import Flask

    from flask_lucia import Lucia

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL SQLAlchemy URL")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--warm", type=int, default=100, help="requests before each revoke")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args()
    seed(args.database)
    server = serve("lucia-cached", args.database, args.port, args.workers, 2)
    try:
        app = Flask("bench_revoker")
        app.config.update(
            LUCIA_BASE_URL=BASE_URL,
            LUCIA_DATABASE_URL=args.database,
            LUCIA_CREATE_TABLES=False,
            LUCIA_SESSION_CACHE=True,  # a process publishes its changes only with it on
        )
        lucia = Lucia(app)
        with app.app_context():
            windows = [trial(lucia, args.port, args.warm) for _ in range(args.trials)]
    finally:
        server.terminate()
        server.wait(10)
        drop(args.database)
    windows.sort()
    print(
        f"stale window after a revoke, gunicorn {args.workers} workers, {args.trials} trials: "
        f"worst {windows[-1]:.1f} ms, median {windows[len(windows) // 2]:.1f} ms, "
        f"best {windows[0]:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
