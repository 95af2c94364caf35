"""Profile the request path: pyinstrument over GETs of the protected view of one app from
``benchmarks/apps.py`` (flask-lucia by default), through Flask's test client.

    python benchmarks/request_profile.py [--kind lucia] [--requests 5000] [--database URL]

Needs pyinstrument (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apps import KINDS, create_app, drop, seed


def main() -> int:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="lucia")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/bench.sqlite3"
        headers = seed(url)[args.kind]
        client = create_app(args.kind, url).test_client(use_cookies=False)
        for _ in range(200):  # warm up
            client.get("/protected", headers=headers)
        profiler = Profiler(interval=0.0001)
        with profiler:
            for _ in range(args.requests):
                if client.get("/protected", headers=headers).status_code != 200:
                    raise SystemExit("/protected did not answer 200")
        if args.database:
            drop(url)
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
