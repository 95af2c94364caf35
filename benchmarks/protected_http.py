"""Protected route over HTTP: each app in ``benchmarks/apps.py`` under gunicorn on loopback,
driven by ``wrk`` (Debian package ``wrk``), interleaved rounds, median req/s and the ratios
to Flask-Login and to the one-query floor.

    python benchmarks/protected_http.py [--database URL] [--seconds 10] [--rounds 3]

Needs gunicorn (``pip install -e ".[bench]"``) and wrk. Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.apps import KINDS, USER_ID, drop, seed  # noqa: E402
from benchmarks.report import interleaved, print_results  # noqa: E402


def serve(kind: str, url: str, port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    """Start gunicorn with one app; returns once it is up."""
    env = dict(os.environ, BENCH_KIND=kind, BENCH_DATABASE_URL=url)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "benchmarks.apps:from_env()",
            "-b", f"127.0.0.1:{port}", "-w", str(workers), "-k", "gthread",
            "--threads", str(threads), "--log-level", "warning",
        ],
        env=env,
    )  # fmt: skip
    for _ in range(200):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/")
            connection.getresponse().read()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"gunicorn for {kind} did not start")


def check(port: int, headers: dict[str, str]) -> None:
    """The signed-in page, as wrk will ask for it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/protected", headers=headers)
    response = connection.getresponse()
    body = response.read().decode()
    if response.status != 200 or USER_ID not in body:
        raise SystemExit(f"port {port}: /protected answered {response.status}")


def wrk(port: int, headers: dict[str, str], seconds: int, connections: int) -> float:
    """Requests per second; any non-2xx answer or socket error fails the run."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/protected"], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw failed requests:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a new SQLite file)")
    parser.add_argument("--seconds", type=int, default=10, help="per app per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8800, help="first of len(kinds) ports")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = args.database or f"sqlite:///{tmp}/bench.sqlite3"
        headers = seed(url)
        if args.database:
            stack.callback(drop, url)
        ports = {kind: args.port + i for i, kind in enumerate(kinds)}
        for kind in kinds:
            server = serve(kind, url, ports[kind], args.workers, args.threads)
            stack.callback(server.wait, 10)
            stack.callback(server.terminate)
            check(ports[kind], headers[kind])
            wrk(ports[kind], headers[kind], 2, args.connections)  # warm up every worker
        results = interleaved(
            kinds,
            args.rounds,
            lambda kind: wrk(ports[kind], headers[kind], args.seconds, args.connections),
        )
    print_results(
        f"HTTP: gunicorn {args.workers} workers x {args.threads} threads (gthread), "
        f"wrk 1 thread x {args.connections} connections, {url.split(':', 1)[0]}, "
        f"{args.rounds} rounds x {args.seconds} s, median req/s",
        results,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
