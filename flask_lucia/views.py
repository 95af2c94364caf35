"""The ``lucia`` blueprint: session status, refresh, sign-out, sign-in and sign-up."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from .csrf import origin_of
from .errors import LuciaError
from .hook import error_response, same_origin, sign_in, sign_out, state
from .types import Session, User

bp = Blueprint("lucia", __name__, template_folder="templates")

_CREDENTIAL_FAILURES = frozenset({"AUTH_INVALID_PROVIDER_ID", "AUTH_INVALID_PASSWORD"})


def safe_redirect(target: object) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not isinstance(target, str) or not target or len(target) > 2048:
        return None
    if any(ord(c) < 32 or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        if origin_of(target) != origin_of(request.host_url):
            return None
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
    return target if target.startswith("/") and not target.startswith("//") else None


def session_body(user: User, session: Session) -> dict[str, Any]:
    """What the browser module knows of a session: public user, expiry, checksum."""
    return {
        "user": user.public(state().settings.public_columns),
        "session": {"expires": session.expires_ms, "checksum": session.checksum},
    }


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _bad_request(message: str) -> Response:
    return error_response(LuciaError("AUTH_INVALID_REQUEST", message), 400)


def _credentials() -> tuple[dict[str, Any], str, str] | Response:
    """A sign-in/up request's JSON object, identifier and password; or a 403 or 400."""
    if not same_origin(required=False):  # login CSRF: a browser on another site
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request("expected a JSON object with 'identifier' and 'password'")
    identifier, password = body.get("identifier"), body.get("password")
    if not isinstance(identifier, str) or not identifier.strip():
        return _bad_request("'identifier' must be a non-empty string")
    if not isinstance(password, str) or not password:
        return _bad_request("'password' must be a non-empty string")
    return body, identifier.strip(), password


@bp.get("/session")
def session_status() -> ResponseReturnValue:
    """The current session for the browser module, or 401."""
    user, session = g.get("_lucia_user"), g.get("_lucia_session")
    if user is None or session is None:
        return _no_store(error_response(LuciaError("AUTH_NOT_AUTHENTICATED")))
    return _no_store(jsonify(session_body(user, session)))


@bp.post("/refresh")
def refresh() -> ResponseReturnValue:
    """Rotate the tokens from the refresh cookie (once per request, even after the hook)."""
    auth = state()
    found = g.get("_lucia_refreshed")
    if found is None:
        token = request.cookies.get(auth.settings.refresh_cookie, "")
        try:
            found = auth.refresh(token)
        except LuciaError as error:
            if error.code != "AUTH_INVALID_REFRESH_TOKEN":
                raise
            g.pop("_lucia_user", None)
            g.pop("_lucia_session", None)
            g._lucia_cookies = auth.clearing_cookies()
            return _no_store(error_response(error))
        assert found.tokens is not None
        g._lucia_user, g._lucia_session = found.user, found.session
        g._lucia_cookies = found.tokens.cookies
    body = {"expires": found.session.expires_ms, "checksum": found.session.checksum}
    return _no_store(jsonify(body))


@bp.post("/sign-out")
def sign_out_view() -> ResponseReturnValue:
    """End this session; answer where to go next (a same-origin path, or null)."""
    if not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    body = request.get_json(silent=True) if request.is_json else request.form
    target = safe_redirect(body.get("redirect") if isinstance(body, dict) else None)
    sign_out()
    if not request.is_json and request.form:
        return redirect(target or "/", 303)
    return _no_store(jsonify({"redirect": target}))


@bp.post("/sign-in")
def sign_in_json() -> ResponseReturnValue:
    """Sign in with identifier and password; unknown user and wrong password look alike."""
    parsed = _credentials()
    if isinstance(parsed, Response):
        return parsed
    _, identifier, password = parsed
    auth = state()
    try:
        user = auth.authenticate_user(auth.settings.password_provider, identifier, password)
    except ValueError:  # an identifier no user can have (too long): same answer
        return error_response(LuciaError("AUTH_INVALID_PASSWORD"))
    except LuciaError as error:
        if error.code in _CREDENTIAL_FAILURES:
            return error_response(LuciaError("AUTH_INVALID_PASSWORD"))
        raise
    session = sign_in(user, fresh=True)
    return _no_store(jsonify(session_body(user, session)))


@bp.post("/sign-up")
def sign_up_json() -> ResponseReturnValue:
    """Create a password user (fields named after user columns become data) and sign in."""
    parsed = _credentials()
    if isinstance(parsed, Response):
        return parsed
    body, identifier, password = parsed
    auth = state()
    data = {k: v for k, v in body.items() if k in auth.storage.user_column_names}
    try:
        user = auth.create_user(
            auth.settings.password_provider, identifier, password=password, user_data=data
        )
    except (TypeError, ValueError) as exc:
        return _bad_request(str(exc))
    session = sign_in(user, fresh=True)
    response = jsonify(session_body(user, session))
    response.status_code = 201
    return _no_store(response)
