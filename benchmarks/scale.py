"""Scale: validation latency with 1,000 and with 1,000,000 sessions in the table, refresh
throughput, cleanup of 1,000,000 expired sessions beside the live ones (time, batches,
longest batch, and validation latency in another process while it runs), and sign-in
latency at the default argon2 parameters.

    python benchmarks/scale.py [--database URL] [--sessions 1000000] [--expired 1000000]

The small and the big table sets live side by side in one database (two table prefixes)
and are measured in alternating blocks, so drift in the machine's speed hits both alike.
SQLite file by default; on a server database the tables are dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402

from benchmarks.report import machine, percentile  # noqa: E402
from flask_lucia import Lucia  # noqa: E402
from flask_lucia.core.auth import Auth  # noqa: E402
from flask_lucia.core.tokens import digest, generate_random_string, new_token  # noqa: E402

USERS = 1000
CHUNK = 10_000
HOUR = 3_600_000
BLOCK = 100  # tokens validated per alternating block
PASSWORD = "scale benchmark password"


def make_app(url: str, prefix: str) -> Flask:
    """An app with flask-lucia on ``url`` under table ``prefix``."""
    app = Flask("scale")
    app.config.update(
        SECRET_KEY="scale benchmark",
        LUCIA_BASE_URL="http://localhost",
        LUCIA_DATABASE_URL=url,
        LUCIA_TABLE_PREFIX=prefix,
    )
    Lucia(app)
    return app


class Sessions:
    """One table set: users, and live or expired sessions with an access and a refresh token."""

    def __init__(self, url: str, prefix: str) -> None:
        self.app = make_app(url, prefix)
        self.auth: Auth = self.app.extensions["lucia"]
        self.count = 0
        self.access: list[str] = []  # raw tokens of a sample of the live sessions
        self.refresh: list[str] = []
        self.user_ids = [generate_random_string(15) for _ in range(USERS)]
        storage = self.auth.storage
        keys = [
            {"id": f"email:u{n}@example.com", "user_id": i, "created_at": 0}
            for n, i in enumerate(self.user_ids)
        ]
        with self.app.app_context(), storage.write() as conn:
            conn.execute(storage.users.insert(), [{"id": i} for i in self.user_ids])
            conn.execute(storage.keys.insert(), keys)

    def grow(self, n: int, *, expired: bool = False, sample: int = 0) -> float:
        """Insert ``n`` sessions, keeping raw tokens of about ``sample`` of them; seconds taken."""
        storage, started = self.auth.storage, time.perf_counter()
        now = int(time.time() * 1000)
        end = now - HOUR if expired else now + 30 * 24 * HOUR
        keep = set(random.sample(range(n), min(n, sample)))
        for offset in range(0, n, CHUNK):
            sessions, access, refresh = [], [], []
            for i in range(offset, min(n, offset + CHUNK)):
                sid = generate_random_string(24)
                sessions.append(
                    {
                        "id": sid,
                        "user_id": self.user_ids[i % USERS],
                        "created_at": now - 2 * HOUR,
                        "expires_at": end,
                        "idle_expires_at": end,
                        "fresh_until": 0,
                        "last_used_at": now,
                        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) scale benchmark",
                        "ip_address": "127.0.0.1",
                    }
                )
                if i in keep:
                    a, r = new_token(), new_token()
                    self.access.append(a)
                    self.refresh.append(r)
                    a_digest, r_digest = digest(a), digest(r)
                else:  # nobody will present these: any unique digest will do
                    a_digest, r_digest = secrets.token_hex(32), secrets.token_hex(32)
                access.append({"digest": a_digest, "session_id": sid, "expires_at": end})
                refresh.append({"digest": r_digest, "session_id": sid, "expires_at": end})
            with self.app.app_context(), storage.write() as conn:
                conn.execute(storage.sessions.insert(), sessions)
                conn.execute(storage.access_tokens.insert(), access)
                conn.execute(storage.refresh_tokens.insert(), refresh)
        self.count += n
        return time.perf_counter() - started

    def drop(self) -> None:
        storage = self.auth.storage
        if storage.engine.dialect.name != "sqlite":
            storage.metadata.drop_all(storage.engine, tables=storage.tables)
        storage.dispose()


def timed(call: Callable[[str], Any], tokens: list[str]) -> list[float]:
    """Seconds per call, each token once; every call must find its session."""
    times = []
    for token in tokens:
        started = time.perf_counter()
        if call(token) is None:
            raise SystemExit("a live token did not validate")
        times.append(time.perf_counter() - started)
    return times


def validation(small: Sessions, big: Sessions, sample: int) -> dict[str, list[float]]:
    """``auth.find`` latencies of both sets, in alternating blocks of fresh tokens."""
    result: dict[str, list[float]] = {"small": [], "big": []}
    tokens = {
        "small": random.choices(small.access, k=sample),  # 1,000 sessions: tokens repeat
        "big": random.sample(big.access, min(sample, len(big.access))),
    }
    sets = {"small": small, "big": big}
    for name in ("small", "big"):  # warm each pool and its first pages
        with sets[name].app.app_context():
            timed(sets[name].auth.find, tokens[name][:BLOCK])
    for start in range(0, sample, BLOCK):
        order = ("small", "big") if start // BLOCK % 2 else ("big", "small")
        for name in order:
            with sets[name].app.app_context():
                block = tokens[name][start : start + BLOCK]
                result[name].extend(timed(sets[name].auth.find, block))
    return result


def reader(url: str, prefix: str, tokens: list[str], out: Connection) -> None:
    """Another process (a web worker): validate tokens until told to stop; send latencies."""
    app = make_app(url, prefix)
    auth: Auth = app.extensions["lucia"]
    times: list[float] = []
    with app.app_context():
        out.send("ready")
        while not out.poll():
            times.extend(timed(auth.find, [random.choice(tokens)]))
            time.sleep(0.001)
    out.send(times)


def cleanup(big: Sessions, url: str, prefix: str, batch_size: int) -> dict[str, float]:
    """``flask lucia cleanup``'s loop, timed per batch, while another process validates."""
    ours, theirs = multiprocessing.Pipe()
    big.auth.storage.dispose()  # no pooled connection crosses the fork
    process = multiprocessing.Process(target=reader, args=(url, prefix, big.access, theirs))
    process.start()
    if ours.recv() != "ready":
        raise SystemExit("the reader did not start")
    batches: list[float] = []
    removed = 0
    with big.app.app_context():
        started = last = time.perf_counter()
        for count in big.auth.expired_batches(batch_size):
            now = time.perf_counter()
            batches.append(now - last)
            last = now
            removed += count
        total = time.perf_counter() - started
    ours.send("stop")
    during: list[float] = ours.recv()
    process.join()
    return {
        "seconds": total,
        "rows": removed,
        "batches": len(batches),
        "longest_ms": max(batches) * 1000,
        "median_ms": statistics.median(batches) * 1000,
        "validations": len(during),
        "validate_p50_us": statistics.median(during) * 1e6,
        "validate_p99_ms": percentile(during, 0.99) * 1000,
        "validate_max_ms": max(during) * 1000,
    }


def refresh_rate(sessions: Sessions, count: int) -> float:
    """Sequential refreshes per second, each of a different session (their tokens are spent)."""
    tokens, sessions.refresh = sessions.refresh[:count], sessions.refresh[count:]
    sessions.access = sessions.access[count:]  # a refresh ends the old access token
    with sessions.app.app_context():
        started = time.perf_counter()
        for token in tokens:
            sessions.auth.refresh(token)
        return len(tokens) / (time.perf_counter() - started)


def sign_in_latency(sessions: Sessions, rounds: int) -> tuple[float, float]:
    """Median ``POST /auth/sign-in``, and median argon2 verify alone, in milliseconds."""
    auth = sessions.auth
    with sessions.app.app_context():
        auth.create_user("email", "scale@example.com", password=PASSWORD)
        stored = auth.storage.user_by_key("email:scale@example.com")
    assert stored is not None
    client = sessions.app.test_client()
    body = {"identifier": "scale@example.com", "password": PASSWORD}
    sign_ins, verifies = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post("/auth/sign-in", json=body, headers={"Origin": "http://localhost"})
        sign_ins.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"sign-in answered {response.status_code}")
        started = time.perf_counter()
        auth.hasher.verify(stored[-1], PASSWORD)
        verifies.append(time.perf_counter() - started)
    return statistics.median(sign_ins) * 1000, statistics.median(verifies) * 1000


def run(url: str, args: argparse.Namespace) -> Iterator[str]:
    """The benchmark, a line at a time."""
    prefix = f"scale{random.randrange(10**6)}"
    small, big = Sessions(url, f"{prefix}s_"), Sessions(url, f"{prefix}b_")
    try:
        small.grow(args.small, sample=args.small)
        seconds = big.grow(args.sessions, sample=args.sample + args.refreshes)
        yield f"(set-up: {args.sessions:,} sessions inserted in {seconds:.0f} s)"
        times = validation(small, big, args.sample)
        s50, s99 = statistics.median(times["small"]) * 1e6, percentile(times["small"], 0.99) * 1e6
        b50, b99 = statistics.median(times["big"]) * 1e6, percentile(times["big"], 0.99) * 1e6
        yield (
            f"validation (auth.find, {args.sample:,} tokens each, alternating blocks): "
            f"{args.small:,} sessions median {s50:.0f} us, p99 {s99:.0f} us; "
            f"{big.count:,} sessions median {b50:.0f} us, p99 {b99:.0f} us; "
            f"ratio {b50 / s50:.2f}x median, {b99 / s99:.2f}x p99"
        )
        rate = refresh_rate(big, args.refreshes)
        yield f"refresh: {rate:.0f} rotations/s (sequential, {args.refreshes:,} sessions)"
        seconds = big.grow(args.expired, expired=True)
        yield f"(set-up: {args.expired:,} expired sessions inserted in {seconds:.0f} s)"
        result = cleanup(big, url, f"{prefix}b_", args.batch_size)
        yield (
            f"cleanup: {result['rows']:,.0f} rows ({args.expired:,} expired sessions and their "
            f"tokens, beside {big.count - args.expired:,} live) in {result['seconds']:.1f} s; "
            f"{result['batches']:.0f} batches of <= {args.batch_size}; one batch (one transaction) "
            f"median {result['median_ms']:.0f} ms, longest {result['longest_ms']:.0f} ms"
        )
        yield (
            f"  validation in another process meanwhile: {result['validations']:,.0f} requests, "
            f"median {result['validate_p50_us']:.0f} us, p99 {result['validate_p99_ms']:.1f} ms, "
            f"slowest {result['validate_max_ms']:.1f} ms"
        )
        with big.app.app_context(), big.auth.storage.read() as conn:
            sessions = big.auth.storage.sessions
            now = int(time.time() * 1000)
            if conn.execute(sessions.select().where(sessions.c.expires_at <= now)).first():
                raise SystemExit("cleanup left an expired session")
        sign_in, verify = sign_in_latency(small, args.sign_ins)
        yield (
            f"sign-in: POST /auth/sign-in median {sign_in:.1f} ms; argon2id verify alone "
            f"{verify:.1f} ms (m=19456 KiB, t=2, p=1)"
        )
    finally:
        with small.app.app_context():
            small.drop()
        with big.app.app_context():
            big.drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a new SQLite file)")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=4_000, help="tokens validated per size")
    parser.add_argument("--refreshes", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--sign-ins", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/scale.sqlite3"
        print(f"database: {url.split(':', 1)[0]}", flush=True)
        for line in run(url, args):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
