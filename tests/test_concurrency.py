"""Racing requests: the database's own atomicity, not a Python lock, keeps sessions whole."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lucia import Lucia, LuciaError, Tokens

THREADS = 50


def storm(app: Flask, refresh_token: str) -> list[Tokens | LuciaError]:
    """Present one refresh token from THREADS threads released at the same instant."""
    barrier = threading.Barrier(THREADS)

    def one() -> Tokens | LuciaError:
        with app.app_context():
            barrier.wait()
            try:
                return app.lucia.refresh_session(refresh_token)[1]
            except LuciaError as error:
                return error

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda _: one(), range(THREADS)))


def live_refresh_tokens(app: Flask) -> int:
    storage = app.extensions["lucia"].storage
    table = storage.refresh_tokens
    with storage.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.spent_at.is_(None))
        ).scalar_one()


def test_a_refresh_storm_within_the_grace_signs_nobody_out(app: Flask, lucia: Lucia) -> None:
    user = lucia.create_user("email", "a@example.com")
    session, tokens = lucia.create_session(user.user_id)
    results = storm(app, tokens.refresh_token)
    errors = [r for r in results if isinstance(r, LuciaError)]
    assert errors == []
    pairs = {(r.access_token, r.refresh_token) for r in results if isinstance(r, Tokens)}
    assert len(pairs) == 1  # every thread got the one pair the winner made
    assert lucia.validate_access_token(pairs.pop()[0]).session_id == session.session_id
    assert live_refresh_tokens(app) == 1


def test_after_a_storm_a_replay_past_the_grace_revokes_the_session(
    app: Flask, lucia: Lucia, clock: Any
) -> None:
    user = lucia.create_user("email", "a@example.com")
    _, tokens = lucia.create_session(user.user_id)
    (live,) = {(r.access_token, r.refresh_token) for r in storm(app, tokens.refresh_token)}
    clock.advance(31)
    with pytest.raises(LuciaError) as excinfo:
        lucia.refresh_session(tokens.refresh_token)
    assert excinfo.value.code == "AUTH_INVALID_REFRESH_TOKEN"
    with pytest.raises(LuciaError):  # the session the storm kept alive is gone
        lucia.validate_access_token(live[0])
