"""The cost of recording sign-ins (DESIGN §20): ``POST /auth/sign-in`` with the activity
feature recording, against the same app with its sign-in recording taken out, in one run
and alternating, so both arms see the same machine.

    python -m benchmarks.activity [--rounds 60] [--database-url URL]

Passwords are hashed with the cheapest argon2id parameters so that the database's share
shows; the default ones (19 MiB, t=2) add the same ~tens of ms to both arms.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import tempfile
import time
from typing import Any

from flask import Flask

from flask_lucia import Lucia
from flask_lucia.activity import record

PASSWORD = "correct horse battery"


def make_app(url: str) -> Flask:
    """An app with one user, whose sign-in is measured; cheap hashing."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench",
        TESTING=True,
        LUCIA_DATABASE_URL=url,
        LUCIA_PASSWORD_TIME_COST=1,
        LUCIA_PASSWORD_MEMORY_COST=8,
        LUCIA_THROTTLE=False,
        LUCIA_TABLE_PREFIX=f"bench{secrets.token_hex(3)}_",  # a shared server's tables stay
    )
    lucia = Lucia(app)
    with app.app_context():
        lucia.create_user("email", "bench@example.com", password=PASSWORD)
    return app


def sign_in_ms(app: Flask, client: Any, recording: bool) -> float:
    """One JSON sign-in in milliseconds, with or without its event written (the same
    browser each time: a known device, so no new-device mail)."""
    funcs: list[Any] = app.after_request_funcs[None]
    if not recording and record.flush in funcs:
        funcs.remove(record.flush)
    if recording and record.flush not in funcs:
        funcs.append(record.flush)
    body = {"identifier": "bench@example.com", "password": PASSWORD}
    started = time.perf_counter()
    answer = client.post("/auth/sign-in", json=body, headers={"Origin": "http://localhost"})
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"sign-in answered {answer.status_code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        logging.getLogger("flask_lucia").setLevel(logging.ERROR)
        app = make_app(url)
        client = app.test_client()
        for recording in (False, True):  # warm both arms; the browser gets its device cookie
            sign_in_ms(app, client, recording)
        arms: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for recording in (False, True):
                arms[recording].append(sign_in_ms(app, client, recording))
        if args.database_url:
            with app.app_context():
                app.extensions["lucia"].storage.drop_tables()
    off, on = statistics.median(arms[False]), statistics.median(arms[True])
    print(f"{url.split(':')[0]}: POST /auth/sign-in median over {args.rounds} rounds")
    print(f"  without the sign-in event: {off:.2f} ms")
    print(f"  with the sign-in event:    {on:.2f} ms  (+{on - off:.2f} ms, one INSERT)")


if __name__ == "__main__":
    main()
