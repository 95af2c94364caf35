"""``login_required``, ``fresh_login_required`` and ``mfa_required`` for views (sync or async)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from .errors import LuciaError
from .hook import bearer_token, error_response

F = TypeVar("F", bound=Callable[..., Any])


def wants_json() -> bool:
    """True for API-style requests: a JSON body, a bearer token, or JSON preferred over HTML."""
    if request.is_json or bearer_token() is not None:
        return True
    best = request.accept_mimetypes.best_match(("text/html", "application/json"))
    return best == "application/json"


def unauthenticated(*, fresh_required: bool = False) -> ResponseReturnValue:
    """Redirect HTML requests to the login view with a same-origin ``next``; else 401 JSON."""
    view = current_app.config.get("LUCIA_LOGIN_VIEW")
    if fresh_required:
        view = current_app.config.get("LUCIA_REAUTHENTICATE_VIEW") or view
    if view and not wants_json():
        next_path = request.full_path if request.query_string else request.path
        return redirect(url_for(view, next=next_path))
    if fresh_required:
        error = LuciaError("AUTH_NOT_AUTHENTICATED", "Confirm your password to continue.")
        return error_response(error, fresh_required=True)
    return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))


def login_required(view: F) -> F:
    """Let signed-in requests through; OPTIONS (CORS preflight) is exempt."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS" and g.get("_lucia_user") is None:
            return unauthenticated()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def fresh_login_required(view: F) -> F:
    """Like ``login_required``, and the session must be fresh (password within FRESH_FOR)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS":
            session = g.get("_lucia_session")
            if session is None:
                return unauthenticated()
            if not session.fresh:
                return unauthenticated(fresh_required=True)
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def mfa_required(view: F) -> F:
    """Like ``login_required``, and the session must have been signed in with a second
    factor or a passkey (``Session.mfa``, DESIGN §15); otherwise the two-factor page (HTML)
    or 401 ``AUTH_SECOND_FACTOR_REQUIRED`` (JSON)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS":
            session = g.get("_lucia_session")
            if session is None:
                return unauthenticated()
            if not session.mfa:
                verify = url_for("lucia.two_factor_verify")
                if current_app.config["LUCIA_REGISTER_VIEWS"] and not wants_json():
                    next_path = request.full_path if request.query_string else request.path
                    return redirect(url_for("lucia.two_factor_verify", next=next_path))
                return error_response(LuciaError("AUTH_SECOND_FACTOR_REQUIRED"), verify=verify)
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)
