"""Load test: the example app under gunicorn, 16 clients signing in, browsing, refreshing and
signing out for 60 s. Reports requests, errors, unexpected sign-outs and latency percentiles.

    python benchmarks/load.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test

Needs gunicorn (``pip install gunicorn``). Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import percentile  # noqa: E402

PASSWORD = "load test password"


class Client:
    """One browser: a cookie jar over one keep-alive connection."""

    def __init__(self, port: int, stats: Stats) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.origin = f"http://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.stats = stats

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        headers = {"Origin": self.origin, "Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        self.stats.record(path, response.status, time.perf_counter() - started)
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                token = rest.split(";", 1)[0]
                if token:
                    self.cookies[name] = token
                else:
                    self.cookies.pop(name, None)
        return response.status, payload


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.signouts = 0

    def record(self, path: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] += 1
            if status >= 500:
                self.errors.append(f"{status} {path}")

    def unexpected(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def user_loop(index: int, port: int, stats: Stats, stop: float) -> None:
    client = Client(port, stats)
    identifier = f"load{index}-{random.randrange(10**9)}@example.com"
    body = {
        "identifier": identifier,
        "password": PASSWORD,
        "username": f"u{index}{random.randrange(10**6)}",
    }
    status, _ = client.request("POST", "/auth/sign-up", body)
    if status != 201:
        stats.unexpected(f"sign-up answered {status}")
        return
    step = 0
    while time.monotonic() < stop:
        step += 1
        status, _ = client.request("GET", "/dashboard")
        if status != 200:
            with stats.lock:
                stats.signouts += 1
            stats.unexpected(f"dashboard answered {status} while signed in")
            client.request(
                "POST", "/auth/sign-in", {"identifier": identifier, "password": PASSWORD}
            )
            continue
        if step % 10 == 0:
            status, _ = client.request("POST", "/auth/refresh", {})
            if status != 200:
                stats.unexpected(f"refresh answered {status}")
        if step % 50 == 0:
            client.request("POST", "/auth/sign-out", {})
            status, _ = client.request(
                "POST", "/auth/sign-in", {"identifier": identifier, "password": PASSWORD}
            )
            if status != 200:
                stats.unexpected(f"sign-in answered {status}")


def drop_tables(url: str, prefix: str) -> None:
    """Remove the tables this run created."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine, only=lambda name, _: name.startswith(prefix))
    metadata.drop_all(engine)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("LUCIA_TEST_DATABASE_URL"))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    env = dict(os.environ, FLASK_LUCIA_TABLE_PREFIX=f"load{random.randrange(10**6)}_")
    if args.database:
        env["FLASK_LUCIA_DATABASE_URL"] = args.database
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(ROOT / "examples"),
            "app:app",
            "-b",
            f"127.0.0.1:{args.port}",
            "-w",
            str(args.workers),
            "-k",
            "gthread",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request("GET", "/")
                break
            except OSError:
                time.sleep(0.1)
        stats = Stats()
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=user_loop, args=(i, args.port, stats, stop))
            for i in range(args.clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(10)
        if args.database:
            drop_tables(args.database, env["FLASK_LUCIA_TABLE_PREFIX"])
    lat = sorted(stats.latencies)

    def p(q: float) -> float:
        return percentile(lat, q) * 1000

    print(
        f"database: {args.database or 'SQLite (instance folder)'}; {args.clients} clients, "
        f"{args.workers} gunicorn workers x 4 threads, {elapsed:.1f} s"
    )
    print(f"requests: {len(lat)} ({len(lat) / elapsed:.0f}/s), statuses: {dict(stats.statuses)}")
    print(f"errors: {len(stats.errors)}, unexpected sign-outs: {stats.signouts}")
    print(
        f"latency ms: p50 {statistics.median(lat) * 1000:.1f}, p90 {p(0.9):.1f}, p99 {p(0.99):.1f}"
    )
    for error in stats.errors[:10]:
        print("  ", error)
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
