"""Fuzzing every input of the HTTP surface: never a 5xx, a traceback, or an off-site redirect.

CI runs a few hundred examples per test; ``LUCIA_FUZZ_EXAMPLES=100000 pytest
tests/test_fuzz.py`` runs that many per test on demand.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_lucia.core.csrf import origin_of

from .conftest import ORIGIN, PASSWORD, sign_up

EXAMPLES = int(os.environ.get("LUCIA_FUZZ_EXAMPLES", "300"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What fits in an HTTP header: printable Latin-1, no CR/LF.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
tokenish = st.one_of(
    header_text,
    st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=30, max_size=34
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
json_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"identifier": json_values, "password": json_values},
        optional={"username": json_values, "age": json_values, "redirect": json_values},
    ),
)
POSTS = ["/auth/sign-in", "/auth/sign-up", "/auth/sign-out", "/auth/refresh", "/auth/confirm"]
PATHS = ["/private", "/auth/session", "/auth/sessions", "/auth/refresh", "/auth/sign-out"]


def sane(response: Any) -> None:
    """No server error, no traceback, and any redirect stays on this site."""
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        assert not parts.netloc or f"{parts.scheme}://{parts.netloc}" == ORIGIN, location
        assert not location.startswith("//")


@pytest.fixture
def signed_in(client: FlaskClient) -> FlaskClient:
    """A signed-in client that sends no Origin unless a test passes one."""
    sign_up(client)
    del client.environ_base["HTTP_ORIGIN"]
    return client


@fuzz
@given(path=st.sampled_from(PATHS), access=tokenish, refresh=tokenish, post=st.booleans())
def test_any_cookie_values(app: Flask, path: str, access: str, refresh: str, post: bool) -> None:
    client = app.test_client()
    cookies = f"lucia_access_token={access}; lucia_refresh_token={refresh}"
    headers = {"Cookie": cookies, "Origin": ORIGIN}
    sane(client.post(path, headers=headers) if post else client.get(path, headers=headers))


@fuzz
@given(path=st.sampled_from(PATHS), header=header_text, token=tokenish)
def test_any_authorization_header(app: Flask, path: str, header: str, token: str) -> None:
    client = app.test_client()
    sane(client.get(path, headers={"Authorization": header}))
    sane(client.post(path, headers={"Authorization": f"Bearer {token}"}))


@fuzz
@given(origin=st.one_of(st.none(), header_text), referer=st.one_of(st.none(), header_text))
def test_any_origin_and_referer(
    signed_in: FlaskClient, origin: str | None, referer: str | None
) -> None:
    headers = {k: v for k, v in (("Origin", origin), ("Referer", referer)) if v is not None}
    response = signed_in.post("/auth/refresh", headers=headers)
    sane(response)
    claimed = origin if origin is not None else referer
    if response.status_code == 403:
        assert response.json["error"] == "AUTH_INVALID_REQUEST"
    else:  # only this site's own origin gets through
        assert claimed is not None and origin_of(claimed) == ORIGIN, claimed


@fuzz
@given(target=st.one_of(header_text, json_values))
def test_any_sign_out_redirect_stays_on_this_site(client: FlaskClient, target: Any) -> None:
    response = client.post("/auth/sign-out", json={"redirect": target})
    sane(response)
    answer = response.json["redirect"]
    assert answer is None or (answer.startswith("/") and not answer.startswith("//"))
    assert answer is None or "\\" not in answer


@fuzz
@given(target=header_text)
def test_any_next_parameter_stays_on_this_site(client: FlaskClient, target: str) -> None:
    from .test_forms import csrf_token

    if not client.get_cookie("lucia_access_token"):
        sign_up(client)
    page = client.get("/auth/sign-in", query_string={"next": target})
    sane(page)
    # Signed in, the form's GET sends the client on (DESIGN §16): to this site only.
    assert page.status_code == 303
    assert page.location.startswith("/") and not page.location.startswith("//")
    response = client.post(
        "/auth/sign-in",
        data={
            "csrf_token": csrf_token(client.get("/auth/confirm").text),
            "identifier": "ann@example.com",
            "password": PASSWORD,
            "next": target,
        },
    )
    sane(response)
    assert response.status_code == 303
    assert response.location.startswith("/") and not response.location.startswith("//")


@fuzz
@given(path=st.sampled_from(POSTS), body=json_bodies)
def test_any_json_body(signed_in: FlaskClient, path: str, body: Any) -> None:
    sane(signed_in.post(path, json=body, headers={"Origin": ORIGIN}))


@fuzz
@given(
    path=st.sampled_from(POSTS[:2]),
    fields=st.dictionaries(
        st.sampled_from(["identifier", "password", "username", "age", "next", "csrf_token"]),
        header_text,
    ),
)
def test_any_form_body(client: FlaskClient, path: str, fields: dict[str, str]) -> None:
    sane(client.post(path, data=fields))


def test_a_valid_sign_in_still_works_after_fuzzing_inputs(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/auth/sign-out", json={})
    response = client.post(
        "/auth/sign-in", json={"identifier": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
