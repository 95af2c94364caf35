"""The auth cookies: names and attributes of each Set-Cookie value, clearing, and writing them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Response

from flask_lucia.config import DEFAULTS, Settings
from flask_lucia.core.cookies import clearing_cookies, set_cookie, token_cookies

ACCESS_AGE = 900
REFRESH_AGE = 1_209_600


def settings(**config: Any) -> Settings:
    return Settings.from_config({**DEFAULTS, "TESTING": True, **config})


def pair(secure: bool = False, **config: Any) -> tuple[str, str]:
    return token_cookies(settings(**config), "acc", ACCESS_AGE, "ref", REFRESH_AGE, secure)


def attributes(cookie: str) -> list[str]:
    """The attributes after ``name=value``, in order."""
    return cookie.split("; ")[1:]


def test_cookies_carry_the_tokens_under_the_default_names() -> None:
    access, refresh = pair()
    assert access.startswith("lucia_access_token=acc; ")
    assert refresh.startswith("lucia_refresh_token=ref; ")


def test_cookie_names_are_configurable() -> None:
    access, refresh = pair(LUCIA_ACCESS_COOKIE_NAME="a", LUCIA_REFRESH_COOKIE_NAME="r")
    assert access.startswith("a=acc; ")
    assert refresh.startswith("r=ref; ")


@pytest.mark.parametrize("flag", ["HttpOnly", "SameSite=Lax", "Path=/"])
def test_both_cookies_have_the_default_attribute(flag: str) -> None:
    access, refresh = pair()
    assert flag in attributes(access)
    assert flag in attributes(refresh)


def test_max_age_is_each_tokens_lifetime() -> None:
    access, refresh = pair()
    assert f"Max-Age={ACCESS_AGE}" in attributes(access)
    assert f"Max-Age={REFRESH_AGE}" in attributes(refresh)


def test_secure_cookies_have_secure() -> None:
    access, refresh = pair(secure=True)
    assert "Secure" in attributes(access)
    assert "Secure" in attributes(refresh)


def test_insecure_cookies_lack_secure() -> None:
    access, refresh = pair(secure=False)
    assert "Secure" not in attributes(access)
    assert "Secure" not in attributes(refresh)


def test_no_domain_by_default() -> None:
    access, refresh = pair()
    assert not any(a.startswith("Domain=") for a in attributes(access) + attributes(refresh))


def test_cookie_domain_is_the_configured_domain() -> None:
    access, refresh = pair(LUCIA_COOKIE_DOMAIN="example.com")
    assert "Domain=example.com" in attributes(access)
    assert "Domain=example.com" in attributes(refresh)


def test_samesite_and_path_are_configurable() -> None:
    access, _ = pair(LUCIA_COOKIE_SAMESITE="Strict", LUCIA_COOKIE_PATH="/app")
    assert "SameSite=Strict" in attributes(access)
    assert "Path=/app" in attributes(access)


def test_clearing_cookies_are_empty_and_expire_now() -> None:
    access, refresh = clearing_cookies(settings(), secure=True)
    assert access.startswith("lucia_access_token=; ")
    assert refresh.startswith("lucia_refresh_token=; ")
    assert "Max-Age=0" in attributes(access)
    assert "Max-Age=0" in attributes(refresh)


def test_clearing_cookies_keep_the_cookie_scope() -> None:
    access, _ = clearing_cookies(settings(LUCIA_COOKIE_DOMAIN="example.com"), secure=True)
    assert {"Domain=example.com", "Path=/", "Secure", "HttpOnly"} <= set(attributes(access))


def test_set_cookie_adds_one_header_per_cookie() -> None:
    response = Response()
    access, refresh = pair()
    set_cookie(response, access, refresh)
    assert response.headers.getlist("Set-Cookie") == [access, refresh]


def test_set_cookie_makes_the_response_private_no_store() -> None:
    response = Response("ok", headers={"Cache-Control": "public, max-age=60"})
    set_cookie(response, *pair())
    assert response.headers["Cache-Control"] == "private, no-store"


# -- __Host- names ------------------------------------------------------------------------


def test_the_host_prefix_names_both_cookies_host_and_keeps_them_secure_at_root() -> None:
    access, refresh = token_cookies(
        settings(LUCIA_COOKIE_HOST_PREFIX=True), "acc", ACCESS_AGE, "ref", REFRESH_AGE, True
    )
    assert access.startswith("__Host-lucia_access_token=acc; ")
    assert refresh.startswith("__Host-lucia_refresh_token=ref; ")
    for cookie in (access, refresh):
        assert "Secure" in attributes(cookie) and "Path=/" in attributes(cookie)
        assert not any(a.startswith("Domain=") for a in attributes(cookie))


def test_clearing_uses_the_host_prefixed_names() -> None:
    access, refresh = clearing_cookies(settings(LUCIA_COOKIE_HOST_PREFIX=True), True)
    assert access.startswith("__Host-lucia_access_token=; ")
    assert refresh.startswith("__Host-lucia_refresh_token=; ")
