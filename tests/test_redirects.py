"""``flask_lucia.safe_next_url``: a ``next`` target is kept only when it stays on this site."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, redirect, request

import flask_lucia
from flask_lucia import safe_next_url


def test_safe_next_url_is_public() -> None:
    assert flask_lucia.safe_next_url is safe_next_url and "safe_next_url" in flask_lucia.__all__


@pytest.mark.parametrize("target", ["/", "/dashboard", "/posts/2?tab=comments&x=1", "/a#b"])
def test_a_path_on_this_site_is_kept_as_it_is(app: Flask, target: str) -> None:
    with app.test_request_context("/auth/sign-in"):
        assert safe_next_url(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "data:text/html,hi",
        "http://localhost.evil.example/",
        "http://localhost:8080/",
        "https://localhost/",
        "\t//evil.example",
        "/ok\n",
        "dashboard",
        "",
        "/" + "a" * 2048,
        None,
        42,
        ["/"],
    ],
)
def test_anything_that_leaves_the_site_is_none(app: Flask, target: Any) -> None:
    with app.test_request_context("/auth/sign-in"):
        assert safe_next_url(target) is None


def test_a_full_url_of_this_origin_becomes_its_path_and_query(app: Flask) -> None:
    with app.test_request_context("/", base_url="https://app.example:8443"):
        assert safe_next_url("https://APP.example:8443/posts?x=1") == "/posts?x=1"
        assert safe_next_url("https://app.example:8443") == "/"


def test_outside_a_request_only_paths_are_kept(app: Flask) -> None:
    assert safe_next_url("/dashboard") == "/dashboard"
    assert safe_next_url("http://localhost/dashboard") is None


def test_an_apps_own_login_view_can_follow_next_safely(app: Flask) -> None:
    @app.get("/login-done")
    def done() -> Any:
        return redirect(safe_next_url(request.args.get("next")) or "/home")

    client = app.test_client()
    assert client.get("/login-done?next=/posts/2").location == "/posts/2"
    assert client.get("/login-done?next=https://evil.example/").location == "/home"
