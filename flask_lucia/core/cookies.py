"""The two auth cookies and the device cookie: names, attributes, ``Set-Cookie`` values."""

from __future__ import annotations

from typing import Literal, cast

from werkzeug.http import dump_cookie
from werkzeug.wrappers import Response

from flask_lucia.config import Settings


def _cookie(settings: Settings, name: str, value: str, max_age: int | None, secure: bool) -> str:
    samesite = cast(Literal["Strict", "Lax", "None"] | None, settings.cookie_samesite)
    return dump_cookie(
        name,
        value,
        max_age=max_age,
        path=settings.cookie_path,
        domain=settings.cookie_domain,
        secure=secure,
        httponly=True,
        samesite=samesite,
    )


def token_cookies(
    settings: Settings,
    access_token: str,
    access_max_age: int,
    refresh_token: str,
    refresh_max_age: int,
    secure: bool,
    *,
    persistent: bool = True,
) -> tuple[str, str]:
    """``Set-Cookie`` values for a token pair; ``Max-Age`` is each token's lifetime (s).

    Not ``persistent`` ("remember me" off): neither ``Max-Age`` nor ``Expires``, so the
    browser drops both cookies when it closes; the tokens still expire on the server.
    """
    access_age, refresh_age = (access_max_age, refresh_max_age) if persistent else (None, None)
    return (
        _cookie(settings, settings.access_cookie, access_token, access_age, secure),
        _cookie(settings, settings.refresh_cookie, refresh_token, refresh_age, secure),
    )


def clearing_cookies(settings: Settings, secure: bool) -> tuple[str, str]:
    """``Set-Cookie`` values that delete both auth cookies."""
    return (
        _cookie(settings, settings.access_cookie, "", 0, secure),
        _cookie(settings, settings.refresh_cookie, "", 0, secure),
    )


def device_cookie(settings: Settings, value: str, secure: bool) -> str:
    """``Set-Cookie`` of a device cookie: the token cookies' attributes, and a lifetime
    of ``LUCIA_DEVICE_COOKIE_MAX_AGE``."""
    assert settings.device_cookie is not None
    return _cookie(settings, settings.device_cookie, value, settings.device_max_age // 1000, secure)


def set_cookie(response: Response, *cookie_strings: str) -> None:
    """Add each ``Set-Cookie`` value as its own header (Lucia's ``setCookie``), and keep the
    response out of every cache: a cached copy would hand the tokens to the next client."""
    for value in cookie_strings:
        response.headers.add("Set-Cookie", value)
    if cookie_strings:
        response.headers["Cache-Control"] = "private, no-store"


def extra_cookie(settings: Settings, name: str, value: str, max_age: int, secure: bool) -> str:
    """``Set-Cookie`` of another short-lived cookie of flask-lucia's (a pending sign-in, a
    WebAuthn challenge's binding) with the token cookies' attributes; ``""`` and 0 delete it."""
    return _cookie(settings, name, value, max_age, secure)
