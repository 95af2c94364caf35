"""Fuzzing the email flows' inputs: never a 5xx or a traceback, whatever the body or link."""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ORIGIN, AppFactory, sign_up
from .mailserver import MailServer, flows_app

EXAMPLES = int(os.environ.get("LUCIA_FUZZ_EXAMPLES", "200"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(max_size=300)
addresses = st.one_of(
    text,
    st.builds(lambda a, b: f"{a}@{b}", text, text),
    st.builds(lambda a: f"{a}@example.com", text),
)
values = st.one_of(st.none(), st.booleans(), st.integers(), text, addresses, st.lists(text))
bodies = st.one_of(
    values, st.dictionaries(st.sampled_from(["email", "password", "new_password"]), values)
)
tokens = st.one_of(
    st.text(
        st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="/?#%"),
        min_size=1,
        max_size=60,
    ),
    st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=32, max_size=32
    ),
)


@pytest.fixture
def app(make_app: AppFactory, smtp: MailServer) -> Flask:
    return flows_app(make_app, smtp, LUCIA_FRESH_FOR=3600, WTF_CSRF_ENABLED=False)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client, "ann@example.com")
    return client


def sane(answer: Any) -> None:
    assert answer.status_code < 500 or answer.status_code == 503, answer.get_data(as_text=True)
    if answer.status_code == 503:  # only a mail the server refused may answer 503
        assert answer.json["message"] == "We could not send the email. Try again."


@fuzz
@given(body=bodies, path=st.sampled_from(["/auth/reset-password", "/auth/change-email"]))
def test_any_json_body_asking_for_a_mail_gets_an_answer(
    client: FlaskClient, body: Any, path: str
) -> None:
    sane(client.post(path, json=body))


@fuzz
@given(email=addresses)
def test_any_address_in_the_reset_form_gets_an_answer(client: FlaskClient, email: str) -> None:
    sane(client.post("/auth/reset-password", data={"email": email}))


@fuzz
@given(body=bodies, token=tokens)
def test_any_link_and_body_gets_an_answer(client: FlaskClient, body: Any, token: str) -> None:
    for path in (
        f"/auth/reset-password/{token}",
        f"/auth/verify-email/{token}",
        f"/auth/change-email/{token}",
    ):
        sane(client.get(path))
        sane(client.get(path, headers={"Accept": "application/json"}))
    sane(client.post(f"/auth/reset-password/{token}", json=body))
    sane(client.post("/auth/change-password", json=body))
