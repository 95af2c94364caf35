"""Signals: each is sent exactly once per event, with the app as sender."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blinker import NamedSignal
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import signals

from .conftest import PASSWORD, Clock, cookie, sign_up


@contextmanager
def recording(signal: NamedSignal) -> Iterator[list[tuple[Any, dict[str, Any]]]]:
    sent: list[tuple[Any, dict[str, Any]]] = []

    def receive(sender: Any, **kwargs: Any) -> None:
        sent.append((sender, kwargs))

    with signal.connected_to(receive):
        yield sent


def test_sign_up_sends_user_created_and_user_signed_in_once_each(
    app: Flask, client: FlaskClient
) -> None:
    with recording(signals.user_created) as created, recording(signals.user_signed_in) as signed:
        body = sign_up(client)
    assert [(s, k["user"].user_id) for s, k in created] == [(app, body["user"]["user_id"])]
    assert len(signed) == 1 and signed[0][1]["session"].user_id == body["user"]["user_id"]


def test_sign_in_sends_user_signed_in_once(client: FlaskClient) -> None:
    sign_up(client)
    with recording(signals.user_signed_in) as sent:
        client.post("/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD})
    assert len(sent) == 1


def test_a_failed_sign_in_sends_nothing(client: FlaskClient) -> None:
    sign_up(client)
    with recording(signals.user_signed_in) as sent:
        client.post("/auth/sign-in", json={"identifier": "ann@example.com", "password": "nope"})
    assert sent == []


def test_sign_out_sends_user_signed_out_once_and_not_again(client: FlaskClient) -> None:
    user_id = sign_up(client)["user"]["user_id"]
    with recording(signals.user_signed_out) as sent:
        client.post("/auth/sign-out", json={})
        client.post("/auth/sign-out", json={})
    assert [k["user"].user_id for _, k in sent] == [user_id]


def test_a_refresh_sends_session_refreshed_once(client: FlaskClient) -> None:
    sign_up(client)
    with recording(signals.session_refreshed) as sent:
        client.post("/auth/refresh")
    assert len(sent) == 1


def test_a_rotation_in_the_hook_sends_session_refreshed_once(
    client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    clock.advance(16 * 60)
    with recording(signals.session_refreshed) as sent:
        client.post("/auth/refresh")  # the hook rotates; the endpoint reuses it
    assert len(sent) == 1


def test_a_replay_after_the_grace_sends_refresh_token_reused_once(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    sign_up(client)
    stolen = cookie(client, "lucia_refresh_token")
    client.post("/auth/refresh")
    clock.advance(5 * 60 + 1)  # past the grace and the touch interval
    client.get("/auth/session")  # the new pair is in use
    thief = app.test_client()
    thief.set_cookie("lucia_refresh_token", stolen)
    with recording(signals.refresh_token_reused) as sent:
        thief.post("/auth/refresh", headers={"Origin": "http://localhost"})
        thief.post("/auth/refresh", headers={"Origin": "http://localhost"})
    assert len(sent) == 1


def test_a_legacy_hash_upgrade_sends_password_rehashed_once(app: Flask) -> None:
    from werkzeug.security import generate_password_hash

    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
        storage = app.extensions["lucia"].storage
        with storage.engine.begin() as conn:
            conn.execute(
                storage.keys.update().values(
                    hashed_password=generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
                )
            )
        with recording(signals.password_rehashed) as sent:
            app.lucia.authenticate_user("email", "ann@example.com", PASSWORD)
            app.lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    assert [k["user"].user_id for _, k in sent] == [user.user_id]
