"""The testing helper apps use: one line signs a test client in."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from flask import Flask, redirect, request
from flask.testing import FlaskClient

from flask_lucia import login_required
from flask_lucia.testing import LuciaClient, sign_in_client

from .conftest import ORIGIN, PASSWORD
from .test_forms import post_form
from .test_user_model import App as UserModelApp


def test_sign_in_client_signs_a_test_client_in_as_a_user(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com", user_data={"username": "ann"})
    client = app.test_client()
    session = sign_in_client(client, user)
    assert client.get("/private").json == {"user_id": user.user_id, "username": "ann"}
    assert session.fresh and client.get("/fresh").json == {"ok": True}


def test_sign_in_client_accepts_a_user_id_and_lets_posts_through(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
    client = app.test_client()
    sign_in_client(client, user.user_id)
    assert client.post("/auth/sign-out", json={}).status_code == 200
    assert client.get("/auth/session").status_code == 401


def test_sign_in_client_can_give_a_stale_session(app: Flask) -> None:
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
    client = app.test_client()
    sign_in_client(client, user, fresh=False)
    assert client.get("/fresh", headers={"Accept": "application/json"}).status_code == 401


def test_sign_in_client_uses_host_prefixed_cookie_names(make_app: Any) -> None:
    app = make_app(LUCIA_COOKIE_HOST_PREFIX=True)
    with app.app_context():
        user = app.lucia.create_user("email", "ann@example.com")
    client = app.test_client()
    sign_in_client(client, user)
    assert client.get_cookie("__Host-lucia_access_token") is not None
    assert client.get("/auth/session").json["user"]["user_id"] == user.user_id


# -- LuciaClient ---------------------------------------------------------------------------


@pytest.fixture
def echo(app: Flask) -> Flask:
    """The app with a view that answers the ``Origin`` each method arrived with."""

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def origin() -> dict[str, Any]:
        return {"origin": request.headers.get("Origin")}

    @app.post("/moved")
    def moved() -> Any:
        return redirect("/echo", 307)

    app.test_client_class = LuciaClient
    return app


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_lucia_client_sends_the_apps_own_origin_on_unsafe_requests(
    echo: Flask, method: str
) -> None:
    assert echo.test_client().open("/echo", method=method).json == {"origin": ORIGIN}


def test_lucia_client_sends_no_origin_on_safe_requests(echo: Flask) -> None:
    assert echo.test_client().get("/echo").json == {"origin": None}


def test_lucia_client_sends_the_origin_of_the_requests_own_host(echo: Flask) -> None:
    client = echo.test_client()
    response = client.post("/echo", base_url="https://app.example:8443")
    assert response.json == {"origin": "https://app.example:8443"}


def test_lucia_client_keeps_the_origin_a_redirected_post_needs(echo: Flask) -> None:
    response = echo.test_client().post("/moved", follow_redirects=True)
    assert response.json == {"origin": ORIGIN}


def test_lucia_client_sends_an_origin_the_test_gives_as_given(echo: Flask) -> None:
    client = echo.test_client()
    response = client.post("/echo", headers={"Origin": "https://evil.example"})
    assert response.json == {"origin": "https://evil.example"}


def test_lucia_client_adds_no_origin_beside_a_referer_the_test_gives(echo: Flask) -> None:
    client = echo.test_client()
    response = client.post("/echo", headers={"Referer": "https://evil.example/page"})
    assert response.json == {"origin": None}


def test_lucia_client_keeps_a_cross_site_post_refused(echo: Flask) -> None:
    client = echo.test_client()
    with echo.app_context():
        user = echo.lucia.create_user("email", "ann@example.com")  # type: ignore[attr-defined]
    client.sign_in(user)
    response = client.post("/auth/sign-out", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get("/auth/session").status_code == 200


def test_lucia_client_signs_in_a_user_or_a_user_id(echo: Flask) -> None:
    with echo.app_context():
        ann = echo.lucia.create_user("email", "ann@example.com", user_data={"username": "ann"})  # type: ignore[attr-defined]
        bob = echo.lucia.create_user("email", "bob@example.com", user_data={"username": "bob"})  # type: ignore[attr-defined]
    by_user, by_id = echo.test_client(), echo.test_client()
    session = by_user.sign_in(ann)
    by_id.sign_in(bob.user_id)
    assert by_user.get("/private").json["username"] == "ann" and session.user_id == ann.user_id
    assert by_id.get("/private").json["username"] == "bob"
    assert by_user.post("/auth/sign-out", json={}).status_code == 200  # Origin sent
    assert by_user.get("/auth/session").status_code == 401


def test_lucia_client_signs_in_with_a_stale_or_a_forgetful_session(echo: Flask) -> None:
    with echo.app_context():
        user = echo.lucia.create_user("email", "ann@example.com")  # type: ignore[attr-defined]
    client = echo.test_client()
    session = client.sign_in(user, fresh=False, remember=False)
    assert not session.fresh and not session.remember
    assert client.get("/fresh", headers={"Accept": "application/json"}).status_code == 401


def test_lucia_client_signs_in_an_instance_of_the_apps_user_model(tmp_path: Any) -> None:
    made = UserModelApp(tmp_path)
    try:
        made.app.test_client_class = LuciaClient
        with made.app.app_context():
            user = made.lucia.create_user("email", "ann@example.com", user_data={"username": "ann"})
            made.db.session.add(made.Post(title="hello", author=user))
            user_id = user.id
            made.db.session.commit()  # expires the instance, detached once the context ends
        client = made.app.test_client()
        client.sign_in(user)
        assert client.get("/me").text == f"ann {user_id} 1"
    finally:
        made.drop()


# -- a form POST with CSRF checks on -----------------------------------------------------------


@pytest.fixture
def notes(app: Flask) -> Flask:
    """The app with a form that signed-in users post to (Origin check and Flask-WTF on)."""

    @app.post("/notes")
    @login_required
    def add_note() -> str:
        return f"saved {request.form['text']}"

    with app.app_context():
        app.lucia.create_user("email", "ann@example.com", password=PASSWORD)  # type: ignore[attr-defined]
    return app


def sign_in_with_the_form(client: FlaskClient) -> None:
    fields = {"identifier": "ann@example.com", "password": PASSWORD}
    assert post_form(client, "/auth/sign-in", **fields).status_code == 303


def test_a_form_post_after_a_form_sign_in_passes_with_lucia_client(notes: Flask) -> None:
    notes.test_client_class = LuciaClient
    client = notes.test_client()
    sign_in_with_the_form(client)
    response = client.post("/notes", data={"text": "hello"})
    assert response.status_code == 200 and response.text == "saved hello"


def test_a_form_post_after_a_form_sign_in_is_refused_for_a_plain_client(notes: Flask) -> None:
    client = notes.test_client()
    sign_in_with_the_form(client)
    response = client.post("/notes", data={"text": "hello"})
    assert response.status_code == 403 and response.json["error"] == "AUTH_INVALID_REQUEST"


# -- the fixtures of docs/testing.rst, run as they are -----------------------------------

DOCS = pathlib.Path(__file__).parent.parent / "docs" / "testing.rst"

MYAPP = """
import sqlalchemy as sa
from flask import Flask, render_template_string, request

from flask_lucia import Lucia, login_required

lucia = Lucia(user_columns=[sa.Column("username", sa.String(32))])


def create_app(test_config=None):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "dev"
    app.config.update(test_config or {})
    lucia.init_app(app)

    @app.get("/dashboard")
    @login_required
    def dashboard():
        return render_template_string("Hello, {{ current_user.username }}")

    @app.post("/notes")
    @login_required
    def notes():
        return f"saved {request.form['text']}", 201

    return app
"""


def documented_files() -> dict[str, str]:
    """The code blocks of docs/testing.rst that start with ``# <file name>``."""
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", DOCS.read_text())
    files = {}
    for block in blocks:
        code = textwrap.dedent(block)
        first = code.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            files[first[2:]] = code
    return files


def test_the_documented_pytest_fixtures_and_tests_pass(tmp_path: Any) -> None:
    files = documented_files()
    assert set(files) == {"conftest.py", "test_notes.py"}
    for name, code in {**files, "myapp.py": MYAPP}.items():
        (tmp_path / name).write_text(code)
    root = pathlib.Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)])}
    env.pop("LUCIA_TEST_DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
