"""The ``lucia`` blueprint: session status, refresh, sign-out, sign-in and sign-up."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from .csrf import origin_of
from .decorators import login_required, wants_json
from .errors import LuciaError
from .forms import ConfirmForm, SignInForm, SignUpForm, form_options, sign_up_form
from .hook import (
    adopt_rotation,
    error_response,
    same_origin,
    set_retry_after,
    sign_in,
    sign_out,
    state,
)
from .script import session_body
from .types import Session

bp = Blueprint("lucia", __name__, template_folder="templates", static_folder=None)
_STATIC = os.path.join(os.path.dirname(__file__), "static")

_STATIC_ENDPOINTS = frozenset({"lucia.script", "lucia.typings"})
_CREDENTIAL_FAILURES = frozenset({"AUTH_INVALID_PROVIDER_ID", "AUTH_INVALID_PASSWORD"})


@bp.url_value_preprocessor
def _cap_body(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Refuse a body over ``LUCIA_MAX_BODY_SIZE`` before anything reads it (413).

    Flask runs URL value preprocessors before every ``before_request`` function (the
    lucia hook, ``CSRFProtect``), so no database work or parsing happens first.
    """
    limit = state().settings.max_body_size
    if limit is None:
        return
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    own = current_app.config["MAX_CONTENT_LENGTH"]
    with contextlib.suppress(AttributeError):  # Flask < 3.1: only Content-Length is checked
        request.max_content_length = limit if own is None else min(limit, own)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Response:
    """A body over the limit, declared or streamed: 413 with a JSON error."""
    return error_response(LuciaError("AUTH_INVALID_REQUEST", "The request body is too large."), 413)


@bp.after_request
def _no_store(response: Response) -> Response:
    """Every answer but the static module's is ``no-store``: pages, JSON, redirects, errors.

    The hook's ``after_request`` runs next and makes an answer that sets cookies
    ``private, no-store``, the static module's included.
    """
    if response.status_code >= 400 or request.endpoint not in _STATIC_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def _refuse_framing(response: Response) -> Response:
    """HTML answers may not be framed (clickjacking); an app's own setting of either
    header is kept, and a policy of its own without ``frame-ancestors`` gets ours beside it."""
    if response.mimetype == "text/html":
        headers = response.headers
        headers.setdefault("X-Frame-Options", "DENY")
        policies = headers.getlist("Content-Security-Policy")
        if not any("frame-ancestors" in policy.lower() for policy in policies):
            headers.add("Content-Security-Policy", "frame-ancestors 'none'")
    return response


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
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    return jsonify(session_body(user, session))


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
            return error_response(error)
        adopt_rotation(found)
    body = {"expires": found.session.expires_ms, "checksum": found.session.checksum}
    return jsonify(body)


@bp.post("/sign-out", endpoint="sign_out")
def sign_out_endpoint() -> ResponseReturnValue:
    """End this session; answer where to go next (a same-origin path, or null)."""
    if not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    body = request.get_json(silent=True) if request.is_json else request.form
    target = safe_redirect(body.get("redirect") if isinstance(body, dict) else None)
    sign_out()
    if not request.is_json and request.form:
        return redirect(target or "/", 303)
    return jsonify({"redirect": target})


@bp.get("/lucia.js")
def script() -> Response:
    """The browser module: static, cacheable, revalidated by ETag."""
    return send_from_directory(_STATIC, "lucia.js", mimetype="text/javascript", max_age=3600)


@bp.get("/lucia.d.ts")
def typings() -> Response:
    """TypeScript declarations of the browser module."""
    return send_from_directory(_STATIC, "lucia.d.ts", mimetype="text/plain", max_age=3600)


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_endpoint() -> ResponseReturnValue:
    """Sign in: JSON for scripts, a Flask-WTF form for browsers."""
    if request.method == "POST" and (request.is_json or not _forms_enabled()):
        return _sign_in_json()
    if request.method == "POST" and not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    form = SignInForm(**form_options())
    if form.validate_on_submit():
        try:
            user = _authenticate((form.identifier.data or "").strip(), form.password.data or "")
        except LuciaError as error:
            return _form_page("lucia/sign_in.html", form, error)
        sign_in(user, fresh=True)
        return redirect(safe_redirect(form.next.data) or "/", 303)
    return _form_page("lucia/sign_in.html", form)


@bp.route("/sign-up", methods=["GET", "POST"], endpoint="sign_up")
def sign_up_endpoint() -> ResponseReturnValue:
    """Sign up: JSON for scripts, a Flask-WTF form (with the app's user columns) for browsers."""
    if not state().settings.sign_up:
        return _sign_up_closed()
    if request.method == "POST" and (request.is_json or not _forms_enabled()):
        return _sign_up_json()
    if request.method == "POST" and not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    auth = state()
    form = sign_up_form([auth.storage.users.c[n] for n in auth.settings.sign_up_columns])
    if form.validate_on_submit():
        data = {name: form[name].data for name in form.data_fields}
        try:
            user = _create((form.identifier.data or "").strip(), form.password.data or "", data)
        except LuciaError as error:
            return _form_page("lucia/sign_up.html", form, error)
        except (TypeError, ValueError) as error:
            return _form_page(
                "lucia/sign_up.html", form, LuciaError("AUTH_INVALID_REQUEST", str(error))
            )
        sign_in(user, fresh=True)
        return redirect(safe_redirect(form.next.data) or "/", 303)
    return _form_page("lucia/sign_up.html", form)


def _sign_up_closed() -> Response:
    """404 on every channel while ``LUCIA_SIGN_UP`` is off: JSON for JSON clients."""
    if wants_json() or not _forms_enabled():
        return error_response(LuciaError("AUTH_INVALID_REQUEST", "Sign-up is closed."), 404)
    raise NotFound()


def _forms_enabled() -> bool:
    return bool(current_app.config["LUCIA_REGISTER_VIEWS"])


def _form_page(
    template: str, form: SignInForm | SignUpForm | ConfirmForm, error: LuciaError | None = None
) -> Response:
    """Render a form page; a failed POST answers 400 (429 when throttled), error flashed."""
    if not _forms_enabled():
        raise NotFound()
    if request.method == "GET":
        form.next.data = safe_redirect(request.args.get("next")) or ""
    message = None if error is None else error.message
    if message and current_app.secret_key:
        flash(message, "error")
        message = None
    page = render_template(template, form=form, error=message, sign_up=state().settings.sign_up)
    response = current_app.make_response(page)
    if request.method == "POST":
        throttled = error is not None and error.code == "AUTH_TOO_MANY_ATTEMPTS"
        response.status_code = 429 if throttled else 400
        if error is not None:
            set_retry_after(response, error)
    return response


def _authenticate(identifier: str, password: str) -> Any:
    """Password sign-in; an unknown user and a wrong password raise the same error."""
    auth = state()
    try:
        return auth.authenticate_user(
            auth.settings.password_provider,
            identifier,
            password,
            client_address=request.remote_addr,
        )
    except ValueError:  # an identifier no user can have (too long)
        raise LuciaError("AUTH_INVALID_PASSWORD") from None
    except LuciaError as error:
        if error.code in _CREDENTIAL_FAILURES:
            raise LuciaError("AUTH_INVALID_PASSWORD") from None
        raise


def _create(identifier: str, password: str, data: dict[str, Any]) -> Any:
    auth = state()
    user = auth.create_user(
        auth.settings.password_provider, identifier, password=password, user_data=data
    )
    auth.emails.after_sign_up(auth.users.id_of(user), client_address=request.remote_addr)
    return user


def _sign_in_json() -> ResponseReturnValue:
    parsed = _credentials()
    if isinstance(parsed, Response):
        return parsed
    _, identifier, password = parsed
    try:
        user = _authenticate(identifier, password)
    except LuciaError as error:
        if error.code != "AUTH_INVALID_PASSWORD":
            raise
        return error_response(error)
    session = sign_in(user, fresh=True)
    return jsonify(session_body(user, session))


def _sign_up_json() -> ResponseReturnValue:
    parsed = _credentials()
    if isinstance(parsed, Response):
        return parsed
    body, identifier, password = parsed
    columns = state().settings.sign_up_columns
    try:
        user = _create(identifier, password, {k: v for k, v in body.items() if k in columns})
    except (TypeError, ValueError) as exc:
        return _bad_request(str(exc))
    session = sign_in(user, fresh=True)
    response = jsonify(session_body(user, session))
    response.status_code = 201
    return response


def _device(session: Session, current: Session | None) -> dict[str, Any]:
    """A session as the device list shows it: times in unix ms, the current one marked."""

    def ms(moment: datetime | None) -> int | None:
        return None if moment is None else int(moment.timestamp() * 1000)

    return {
        "id": session.session_id,
        "created_at": ms(session.created_at),
        "last_used_at": ms(session.last_used_at),
        "expires": session.expires_ms,
        "idle_expires": ms(session.idle_expires),
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
        "current": current is not None and session.session_id == current.session_id,
    }


@bp.get("/sessions")
def sessions() -> ResponseReturnValue:
    """The signed-in user's sessions (devices), newest first; the current one marked."""
    user, current = g.get("_lucia_user"), g.get("_lucia_session")
    if user is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    listed = state().get_user_sessions(current.user_id)
    return jsonify({"sessions": [_device(s, current) for s in listed]})


@bp.post("/sessions/<session_id>/revoke", endpoint="revoke")
def revoke(session_id: str) -> ResponseReturnValue:
    """End one of the user's sessions; other devices are untouched. Revoking this one signs out."""
    user, current = g.get("_lucia_user"), g.get("_lucia_session")
    if user is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    removed = len(session_id) <= 64 and state().storage.delete_user_sessions(
        current.user_id, session_id=session_id
    )
    if not removed:
        return error_response(LuciaError("AUTH_INVALID_REQUEST", "No such session."), 404)
    was_current = current is not None and current.session_id == session_id
    if was_current:
        sign_out()
    if not request.is_json and _forms_enabled():
        return redirect(url_for("lucia.sign_in") if was_current else url_for("lucia.devices"), 303)
    return jsonify({"revoked": session_id, "current": was_current})


@bp.get("/devices", endpoint="devices")
@login_required
def devices_page() -> ResponseReturnValue:
    """The HTML device list with a revoke button per session."""
    if not _forms_enabled():
        raise NotFound()
    current = g.get("_lucia_session")
    listed = state().get_user_sessions(current.user_id)
    return render_template("lucia/devices.html", sessions=listed, current=current)


@bp.route("/confirm", methods=["GET", "POST"], endpoint="reauthenticate")
@login_required
def reauthenticate() -> ResponseReturnValue:
    """Confirm the password to make this session fresh (for ``fresh_login_required`` views)."""
    session: Session = g.get("_lucia_session")
    auth = state()
    if request.method == "POST" and (request.is_json or not _forms_enabled()):
        body = request.get_json(silent=True)
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str) or not password:
            return _bad_request("'password' must be a non-empty string")
        try:
            session = auth.reauthenticate(session, password, client_address=request.remote_addr)
        except LuciaError as error:
            return error_response(error)
        g._lucia_session = session
        return jsonify({"fresh": True, "expires": session.expires_ms})
    form = ConfirmForm(**form_options())
    if form.validate_on_submit():
        try:
            auth.reauthenticate(
                session, form.password.data or "", client_address=request.remote_addr
            )
        except LuciaError as error:
            return _form_page("lucia/confirm.html", form, error)
        return redirect(safe_redirect(form.next.data) or "/", 303)
    return _form_page("lucia/confirm.html", form)
