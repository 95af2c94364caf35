"""The ``requests`` client of docs/http.rst (examples/api_client.py), run against a real
server: sign in with ``"transport": "body"``, call an API with a bearer token, refresh."""

from __future__ import annotations

import importlib.util
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from flask_lucia import current_user, login_required

from .conftest import PASSWORD, AppFactory, Clock

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "api_client.py"


def load_example() -> Any:
    """examples/api_client.py as a module."""
    spec = importlib.util.spec_from_file_location("api_client_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server(make_app: AppFactory) -> Iterator[tuple[Flask, str]]:
    """An app with an ``/api/me`` view, served over HTTP on a free loopback port."""
    app = make_app()

    @app.get("/api/me")
    @login_required
    def me() -> dict[str, Any]:
        return {"user_id": current_user.user_id, "username": current_user.username}

    with app.app_context():
        app.lucia.create_user(  # type: ignore[attr-defined]
            "email", "ann@example.com", password=PASSWORD, user_data={"username": "ann"}
        )
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(5)


def test_the_documented_client_signs_in_calls_the_api_and_refreshes(
    server: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = server
    load_example().main(url, "ann@example.com", PASSWORD)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("signed in as ")
    user_id = lines[0].removeprefix("signed in as ")
    expected = str({"user_id": user_id, "username": "ann"})
    assert lines[1:] == [expected, expected]


def test_the_documented_client_refreshes_when_the_access_token_expires(
    server: tuple[Flask, str], clock: Clock
) -> None:
    _, url = server
    client = load_example().Client(url)
    client.sign_in("ann@example.com", PASSWORD)
    first = dict(client.tokens)
    clock.advance(16 * 60)
    response = client.get("/api/me")
    assert response.status_code == 200 and response.json()["username"] == "ann"
    assert client.tokens["access_token"] != first["access_token"]
    assert client.http.cookies.get_dict() == {}  # nothing came back as a cookie


def test_the_documented_client_is_refused_once_its_session_is_revoked(
    server: tuple[Flask, str],
) -> None:
    app, url = server
    client = load_example().Client(url)
    user = client.sign_in("ann@example.com", PASSWORD)
    with app.app_context():
        app.lucia.invalidate_all_user_sessions(user["user_id"])  # type: ignore[attr-defined]
    with pytest.raises(requests.HTTPError) as refused:
        client.get("/api/me")  # 401, then the refresh is refused too
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["error"] == "AUTH_INVALID_REFRESH_TOKEN"
