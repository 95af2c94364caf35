"""Protected route, in process: GET /protected through Flask's test client for each app in
``benchmarks/apps.py`` (SQLite file by default), interleaved rounds, median req/s and the
ratios to Flask-Login and to the one-query floor.

    python benchmarks/protected.py [--database URL] [--requests 3000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apps import KINDS, USER_ID, create_app, drop, seed
from benchmarks.report import interleaved, print_results


def measure(client: object, headers: dict[str, str], requests: int) -> float:
    """Requests per second of ``requests`` GETs; every answer must be the signed-in page."""
    get = client.get  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(requests):
        response = get("/protected", headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"/protected answered {response.status_code}")
    elapsed = time.perf_counter() - started
    if USER_ID not in response.get_data(as_text=True):
        raise SystemExit("the protected page does not show the user")
    return requests / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a new SQLite file)")
    parser.add_argument("--requests", type=int, default=3000, help="per app per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/bench.sqlite3"
        headers = seed(url)
        clients = {kind: create_app(kind, url).test_client(use_cookies=False) for kind in kinds}
        for kind in kinds:  # warm up: connections, compiled statements, imports
            measure(clients[kind], headers[kind], 200)
        try:
            results = interleaved(
                kinds,
                args.rounds,
                lambda kind: measure(clients[kind], headers[kind], args.requests),
            )
        finally:
            if args.database:
                drop(url)
    print_results(
        f"in process (Flask test client), {url.split(':', 1)[0]}, "
        f"{args.rounds} rounds x {args.requests} requests, median req/s",
        results,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
