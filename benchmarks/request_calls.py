"""Python function calls per signed-in request, counted by cProfile: a figure that does not
move with the machine's load, so two checkouts can be compared where timings are noisy.

    python benchmarks/request_calls.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apps import create_app, seed

KINDS = ("lucia", "lucia-model", "floor", "flask-login")


def calls_per_request(kind: str, url: str, headers: dict[str, str], requests: int) -> float:
    """Calls per ``GET /protected`` of one app kind, after a warm-up."""
    client = create_app(kind, url).test_client(use_cookies=False)
    for _ in range(300):
        assert client.get("/protected", headers=headers).status_code == 200
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        client.get("/protected", headers=headers)
    profile.disable()
    return pstats.Stats(profile).total_calls / requests  # type: ignore[attr-defined,no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "calls.sqlite3")
    headers = seed(url)
    print("Python calls per signed-in request (cProfile, in process, SQLite)")
    for kind in KINDS:
        print(f"{kind:<14}{calls_per_request(kind, url, headers[kind], args.requests):8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
