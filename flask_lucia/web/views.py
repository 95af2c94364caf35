"""The ``lucia`` blueprint: session status, refresh, sign-out, sign-in and sign-up."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge

from flask_lucia import messages
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, Tokens
from flask_lucia.web.agents import device_name
from flask_lucia.web.base import (
    error_response,
    presented_device,
    same_origin,
    set_retry_after,
    state,
)
from flask_lucia.web.decorators import login_required
from flask_lucia.web.forms import (
    ConfirmForm,
    SignInForm,
    SignUpForm,
    confirm_form,
    sign_in_form,
    sign_up_form,
)
from flask_lucia.web.hook import adopt_rotation, issue_session, remember_device, sign_in, sign_out
from flask_lucia.web.pages import error_page, http_error, refuse_framing, refused
from flask_lucia.web.pipeline import after_sign_up, finish_sign_in
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url
from flask_lucia.web.script import session_body

#: The package's folder: its templates and static files live there, for every feature.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bp = Blueprint(
    "lucia", __name__, template_folder="templates", static_folder=None, root_path=_PACKAGE
)
_STATIC = os.path.join(_PACKAGE, "static")

_STATIC_ENDPOINTS = frozenset({"lucia.script", "lucia.typings", "lucia.stylesheet"})
#: Failures a client is told apart from a wrong password by nothing: not the answer,
#: not the time (each costs a hash), not the throttle (each is counted).
_CREDENTIAL_FAILURES = frozenset(
    {"AUTH_INVALID_PROVIDER_ID", "AUTH_INVALID_PASSWORD", "AUTH_OUTDATED_PASSWORD"}
)
#: What each form page's errors are about, for the words they are shown in.
_ACTIONS: dict[str, messages.Action] = {
    "lucia.sign_in": "sign_in",
    "lucia.sign_up": "sign_up",
    "lucia.reauthenticate": "confirm",
}
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


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
    """A body over the limit, declared or streamed: 413, a JSON error or a page."""
    return error_page(LuciaError("AUTH_INVALID_REQUEST", "The request body is too large."), 413)


@bp.errorhandler(NotFound)
@bp.errorhandler(MethodNotAllowed)
def _http_error(error: NotFound | MethodNotAllowed) -> Response:
    """404 and 405 raised by the blueprint's views: a page for browsers, JSON for scripts."""
    return http_error(error)


@bp.errorhandler(LuciaError)
def _lucia_error(error: LuciaError) -> Response:
    """A failure of a blueprint view, in the words of its form (sign-in, sign-up, confirm)."""
    action = _ACTIONS.get(request.endpoint or "")
    return error_page(error if action is None else messages.for_user(error, action))


@bp.errorhandler(CSRFError)
def _expired_token(error: CSRFError) -> ResponseReturnValue:
    """``CSRFProtect`` refused a form's token: the form again, as typed, with a fresh token
    and the reason; JSON clients get the JSON error."""
    if request.is_json or not _forms_enabled():
        return error_response(LuciaError("AUTH_INVALID_REQUEST", error.description), 400)
    if request.endpoint == "lucia.sign_in":
        return _form_page("lucia/sign_in.html", sign_in_form(), expired=True)
    if request.endpoint == "lucia.sign_up":
        return _form_page("lucia/sign_up.html", _sign_up_form(), expired=True)
    if request.endpoint == "lucia.reauthenticate":
        return _form_page("lucia/confirm.html", confirm_form(), expired=True)
    return error_page(LuciaError("AUTH_INVALID_REQUEST", messages.FORM_EXPIRED), 400)


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
    """HTML answers may not be framed (clickjacking): see ``pages.refuse_framing``."""
    return refuse_framing(response)


def _home() -> str:
    """The app's home page: its root path (under ``SCRIPT_NAME`` when mounted)."""
    return request.script_root + "/"


def _bad_request(message: str) -> Response:
    return error_response(LuciaError("AUTH_INVALID_REQUEST", message), 400)


def _credentials(*, check_origin: bool = True) -> tuple[dict[str, Any], str, str] | Response:
    """A sign-in/up request's JSON object, identifier and password; or a 403 or 400."""
    if check_origin and not same_origin(required=False):  # login CSRF: a browser elsewhere
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


def _transport() -> str | Response:
    """Where a JSON request wants its tokens: ``"cookie"`` (the default) or ``"body"`` (API
    and native clients: tokens in the JSON, no cookie set or cleared); else a 400."""
    body = request.get_json(silent=True)
    value = body.get("transport", "cookie") if isinstance(body, dict) else "cookie"
    if value not in ("cookie", "body"):
        return _bad_request('\'transport\' must be "body" or "cookie"')
    return str(value)


def _origin_checked(transport: str) -> bool:
    """Whether a sign-in/up needs the login-CSRF check: always, but for a body-transport
    request without auth cookies, which sets no cookie a cross-site page could plant."""
    if transport == "cookie":
        return True
    settings, cookies = state().settings, request.cookies
    return settings.access_cookie in cookies or settings.refresh_cookie in cookies


def _remember(body: dict[str, Any]) -> bool | Response:
    """``remember`` of a sign-in/up body (default true), or a 400 for a non-boolean."""
    value = body.get("remember", True)
    if not isinstance(value, bool):
        return _bad_request("'remember' must be true or false")
    return value


def _token_body(session: Session, tokens: Tokens) -> dict[str, Any]:
    """The token pair of a body-transport answer, with expiries in unix ms."""
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "access_expires": session.expires_ms,
        "refresh_expires": int(session.idle_expires.timestamp() * 1000),
    }


def _signed_in(
    user: Any, identifier: str, transport: str, remember: bool, status: int = 200
) -> Response:
    """Start a fresh session for ``user``: cookies set, the device cookie too (``cookie``),
    or the tokens in the body and no cookie at all (``body``). ``status`` 201 is a sign-up,
    whose new account has no owner to tell about a new device."""
    if transport == "body":
        session, tokens = issue_session(user, fresh=True)
        response = jsonify({**session_body(user, session), **_token_body(session, tokens)})
    else:
        session = sign_in(user, fresh=True, remember=remember, new_account=status == 201)
        _remember_device(identifier)
        response = jsonify(session_body(user, session))
    response.status_code = status
    return response


@bp.get("/session")
def session_status() -> ResponseReturnValue:
    """The current session for the browser module, or 401."""
    user, session = request_state.get("_lucia_user"), request_state.get("_lucia_session")
    if user is None or session is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    return jsonify(session_body(user, session))


@bp.post("/refresh")
def refresh() -> ResponseReturnValue:
    """Rotate the tokens from the refresh cookie (once per request, even after the hook),
    or with ``"transport": "body"`` the refresh token of the JSON body."""
    transport = _transport()
    if isinstance(transport, Response):
        return transport
    if transport == "body":
        return _refresh_from_body()
    auth = state()
    found = request_state.get("_lucia_refreshed")
    if found is None:
        token = request.cookies.get(auth.settings.refresh_cookie, "")
        try:
            found = auth.refresh(token)
        except LuciaError as error:
            if error.code != "AUTH_INVALID_REFRESH_TOKEN":
                raise
            request_state.pop("_lucia_user", None)
            request_state.pop("_lucia_session", None)
            request_state._lucia_cookies = auth.clearing_cookies()
            return error_response(error)
        adopt_rotation(found)
    body = {"expires": found.session.expires_ms, "checksum": found.session.checksum}
    return jsonify(body)


def _refresh_from_body() -> ResponseReturnValue:
    """Rotate ``{"refresh_token": ...}`` by the cookie rules (grace, reuse revokes the
    session); the new pair goes in the body, and no cookie is set or cleared."""
    body = request.get_json(silent=True)
    token = body.get("refresh_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        return _bad_request("'refresh_token' must be a non-empty string")
    try:
        found = state().refresh(token)
    except LuciaError as error:
        if error.code != "AUTH_INVALID_REFRESH_TOKEN":
            raise
        return error_response(error)
    assert found.tokens is not None
    session = found.session
    payload = {"expires": session.expires_ms, "checksum": session.checksum}
    return jsonify({**payload, **_token_body(session, found.tokens)})


@bp.post("/sign-out", endpoint="sign_out")
def sign_out_endpoint() -> ResponseReturnValue:
    """End this session; answer where to go next (a same-origin path, or null)."""
    if not same_origin(required=False):
        return refused()
    body = request.get_json(silent=True) if request.is_json else request.form
    target = safe_next_url(body.get("redirect") if isinstance(body, dict) else None)
    sign_out()
    if not request.is_json and (request.form or request.mimetype in _FORM_TYPES):
        return redirect(target or _signed_out_page(), 303)
    return jsonify({"redirect": target})


def _signed_out_page() -> str:
    """Where a sign-out form goes without a ``redirect``: ``LUCIA_SIGN_OUT_REDIRECT``, else
    the sign-in page (an app need not have a ``/``), else the app's home."""
    configured = state().settings.sign_out_redirect
    if configured is not None:
        return configured
    return url_for("lucia.sign_in") if _forms_enabled() else _home()


@bp.get("/lucia.js")
def script() -> Response:
    """The browser module: static, cacheable, revalidated by ETag."""
    return send_from_directory(_STATIC, "lucia.js", mimetype="text/javascript", max_age=3600)


@bp.get("/lucia.css", endpoint="stylesheet")
def stylesheet() -> Response:
    """The one stylesheet of the built-in pages: static, cacheable, revalidated by ETag."""
    return send_from_directory(_STATIC, "lucia.css", mimetype="text/css", max_age=3600)


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
        return refused()
    if request.method == "GET" and request_state.get("_lucia_user") is not None:
        return _send_on()
    form = sign_in_form()
    if form.validate_on_submit():
        identifier = (form.identifier.data or "").strip()
        try:
            user = _authenticate(identifier, form.password.data or "")
        except LuciaError as error:
            return _form_page("lucia/sign_in.html", form, error)
        # DESIGN §15: with a second factor, the password makes a pending sign-in, no session.
        # The device cookie waits for the second factor: it is proof of a whole sign-in.
        if (pending := finish_sign_in(user, safe_next_url(form.next.data))) is not None:
            return pending
        sign_in(user, fresh=True, remember=bool(form.remember.data))
        _remember_device(identifier)
        return redirect(safe_next_url(form.next.data) or _home(), 303)
    return _form_page("lucia/sign_in.html", form)


@bp.route("/sign-up", methods=["GET", "POST"], endpoint="sign_up")
def sign_up_endpoint() -> ResponseReturnValue:
    """Sign up: JSON for scripts, a Flask-WTF form (with the app's user columns) for browsers."""
    if not state().settings.sign_up:
        return _sign_up_closed()
    if request.method == "POST" and (request.is_json or not _forms_enabled()):
        return _sign_up_json()
    if request.method == "POST" and not same_origin(required=False):
        return refused()
    if request.method == "GET" and request_state.get("_lucia_user") is not None:
        return _send_on()
    form = _sign_up_form()
    if form.validate_on_submit():
        data = {name: form[name].data for name in form.data_fields}
        identifier = (form.identifier.data or "").strip()
        try:
            user = _create(identifier, form.password.data or "", data)
        except LuciaError as error:
            return _form_page("lucia/sign_up.html", form, error)
        except (TypeError, ValueError) as error:
            return _form_page(
                "lucia/sign_up.html", form, LuciaError("AUTH_INVALID_REQUEST", str(error))
            )
        sign_in(user, fresh=True, new_account=True)
        _remember_device(identifier)
        return redirect(safe_next_url(form.next.data) or _home(), 303)
    return _form_page("lucia/sign_up.html", form)


def _sign_up_form() -> SignUpForm:
    """This app's sign-up form: identifier, password and the ``LUCIA_SIGN_UP_COLUMNS``."""
    auth = state()
    return sign_up_form([auth.storage.users.c[n] for n in auth.settings.sign_up_columns])


def _send_on() -> ResponseReturnValue:
    """A signed-in user has no use for sign-in or sign-up: on to ``next``, or home."""
    return redirect(safe_next_url(request.args.get("next")) or _home(), 303)


def _sign_up_closed() -> Response:
    """404 on every channel while ``LUCIA_SIGN_UP`` is off: a page for browsers, else JSON."""
    return error_page(LuciaError("AUTH_INVALID_REQUEST", "Sign-up is closed."), 404)


def _forms_enabled() -> bool:
    return bool(current_app.config["LUCIA_REGISTER_VIEWS"])


def _form_page(
    template: str,
    form: SignInForm | SignUpForm | ConfirmForm,
    error: LuciaError | None = None,
    *,
    expired: bool = False,
) -> Response:
    """Render a form page; a failed POST answers 400 (429 when throttled), error flashed in
    the user's words. An expired or missing CSRF token says so; the fields keep what was
    typed (never the password) and the page carries a fresh token."""
    if not _forms_enabled():
        raise NotFound()
    if request.method == "GET":
        form.next.data = safe_next_url(request.args.get("next")) or ""
    if error is not None:
        error = messages.for_user(error, _ACTIONS.get(request.endpoint or "", "sign_in"))
    message = None if error is None else error.message
    if request.method == "POST" and error is None and (expired or _token_failed(form)):
        message = messages.FORM_EXPIRED
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


def _token_failed(form: SignInForm | SignUpForm | ConfirmForm) -> bool:
    """Whether a posted form was refused for its CSRF token (expired, missing, another
    session's), as opposed to its fields."""
    token = getattr(form, "csrf_token", None)
    return token is not None and bool(token.errors)


def _authenticate(identifier: str, password: str) -> Any:
    """Password sign-in; an unknown user and a wrong password raise the same error."""
    auth = state()
    try:
        return auth.authenticate_user(
            auth.settings.password_provider,
            identifier,
            password,
            client_address=request.remote_addr,
            device=presented_device(),
        )
    except ValueError:  # an identifier no user can have (too long)
        raise LuciaError("AUTH_INVALID_PASSWORD") from None
    except LuciaError as error:
        if error.code in _CREDENTIAL_FAILURES:
            raise LuciaError("AUTH_INVALID_PASSWORD") from None
        raise


def _confirm(session: Session, password: str) -> Session:
    """Re-authentication; its failures answer as the sign-in's do."""
    try:
        return state().reauthenticate(
            session, password, client_address=request.remote_addr, device=presented_device()
        )
    except LuciaError as error:
        if error.code in _CREDENTIAL_FAILURES:
            raise LuciaError("AUTH_INVALID_PASSWORD") from None
        raise


def _remember_device(identifier: str) -> None:
    """A device cookie for the account this browser just proved the password of."""
    remember_device(state().settings.password_provider, identifier)


def _create(identifier: str, password: str, data: dict[str, Any]) -> Any:
    """Create the user; a clash names the field in the user's words ("This username is
    taken", "An account with this email already exists")."""
    auth = state()
    try:
        user = auth.create_user(
            auth.settings.password_provider, identifier, password=password, user_data=data
        )
    except LuciaError as error:
        taken = None
        if error.code == "AUTH_DUPLICATE_USER_DATA":
            taken = next(iter(auth.storage.taken_columns(data)), None)
        raise messages.for_user(error, "sign_up", taken=taken) from None
    after_sign_up(auth.users.id_of(user), request.remote_addr)
    return user


def _json_options() -> tuple[dict[str, Any], str, str, str, bool] | Response:
    """A JSON sign-in/up: its body, identifier, password, transport and remember; or the
    error answer."""
    transport = _transport()
    if isinstance(transport, Response):
        return transport
    parsed = _credentials(check_origin=_origin_checked(transport))
    if isinstance(parsed, Response):
        return parsed
    body, identifier, password = parsed
    remember = _remember(body)
    if isinstance(remember, Response):
        return remember
    return body, identifier, password, transport, remember


def _sign_in_json() -> ResponseReturnValue:
    options = _json_options()
    if isinstance(options, Response):
        return options
    _, identifier, password, transport, remember = options
    user = _authenticate(identifier, password)  # failures: _lucia_error, in the user's words
    # DESIGN §15: with a second factor, the password makes a pending sign-in, no session.
    if transport == "body":  # no cookie to carry a pending sign-in: the browser's flow only
        if state().has_second_factor(state().users.id_of(user)):
            raise LuciaError(
                "AUTH_SECOND_FACTOR_REQUIRED",
                "This account has a second factor: sign in through the browser.",
            )
    elif (pending := finish_sign_in(user)) is not None:
        return pending  # the device cookie waits for the second factor
    return _signed_in(user, identifier, transport, remember)


def _sign_up_json() -> ResponseReturnValue:
    options = _json_options()
    if isinstance(options, Response):
        return options
    body, identifier, password, transport, remember = options
    columns = state().settings.sign_up_columns
    try:
        user = _create(identifier, password, {k: v for k, v in body.items() if k in columns})
    except (TypeError, ValueError) as exc:
        return _bad_request(str(exc))
    return _signed_in(user, identifier, transport, remember, status=201)


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
    user, current = request_state.get("_lucia_user"), request_state.get("_lucia_session")
    if user is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    listed = state().get_user_sessions(current.user_id)
    return jsonify({"sessions": [_device(s, current) for s in listed]})


@bp.post("/sessions/<session_id>/revoke", endpoint="revoke")
def revoke(session_id: str) -> ResponseReturnValue:
    """End one of the user's sessions; other devices are untouched. Revoking this one signs out."""
    user, current = request_state.get("_lucia_user"), request_state.get("_lucia_session")
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
    current = request_state.get("_lucia_session")
    listed = state().get_user_sessions(current.user_id)
    return render_template(
        "lucia/devices.html",
        sessions=listed,
        current=current,
        home=_home(),
        device_name=device_name,
        ago=messages.ago,
        exact_time=messages.exact_time,
    )


@bp.route("/confirm", methods=["GET", "POST"], endpoint="reauthenticate")
@login_required
def reauthenticate() -> ResponseReturnValue:
    """Confirm the password to make this session fresh (for ``fresh_login_required`` views)."""
    session: Session = request_state.get("_lucia_session")
    if request.method == "POST" and (request.is_json or not _forms_enabled()):
        body = request.get_json(silent=True)
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str) or not password:
            return _bad_request("'password' must be a non-empty string")
        try:
            session = _confirm(session, password)
        except LuciaError as error:
            return error_response(messages.for_user(error, "confirm"))
        request_state._lucia_session = session
        return jsonify({"fresh": True, "expires": session.expires_ms})
    form = confirm_form()
    if form.validate_on_submit():
        try:
            _confirm(session, form.password.data or "")
        except LuciaError as error:
            return _form_page("lucia/confirm.html", form, error)
        return redirect(safe_next_url(form.next.data) or _home(), 303)
    return _form_page("lucia/confirm.html", form)
