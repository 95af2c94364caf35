"""What every part of the request side stands on: the app's ``Auth``, JSON error answers,
the request's bearer token, device cookie and origin check.

The hook, the pages, the notices and every feature's views import this module; it imports
none of them, so the request side has no import cycle.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from flask_lucia.core.auth import Auth
from flask_lucia.core.csrf import origin_allowed
from flask_lucia.errors import LuciaError


def state() -> Auth:
    """The current app's ``Auth`` (``app.extensions["lucia"]``)."""
    auth: Auth = current_app.extensions["lucia"]
    return auth


def error_response(error: LuciaError, status: int | None = None, **extra: object) -> Response:
    """A JSON error body ``{"error", "message", **extra}`` with the code's status; never cached.
    A throttled answer also says ``retry_after`` (seconds), as its ``Retry-After`` does."""
    if error.retry_after is not None:
        extra = {"retry_after": error.retry_after, **extra}
    response = jsonify({**error.to_dict(), **extra})
    response.status_code = status or error.status
    response.headers["Cache-Control"] = "no-store"
    set_retry_after(response, error)
    return response


def set_retry_after(response: Response, error: LuciaError) -> None:
    """``Retry-After`` from a throttling error, on any response that reports it."""
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None without one."""
    header = request.headers.get("Authorization")
    if header is not None and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def same_origin(*, required: bool = True) -> bool:
    """The CSRF check of DESIGN §5 on the current request (True when protection is off)."""
    settings = state().settings
    if not settings.csrf:
        return True
    return origin_allowed(
        request.host_url.rstrip("/"),
        request.headers.get("Origin"),
        request.headers.get("Referer"),
        settings.trusted_origins,
        required=required,
    )


def presented_device() -> str | None:
    """The request's device cookie (None without one, or with device cookies off)."""
    name = state().settings.device_cookie
    return None if name is None else request.cookies.get(name)
