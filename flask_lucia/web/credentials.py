"""Password sign-in and sign-up: JSON for scripts, Flask-WTF forms for browsers. A right
password goes through the sign-in pipeline (``web.pipeline``) before a session.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    redirect,
    request,
)
from flask.typing import ResponseReturnValue

from flask_lucia import messages
from flask_lucia.core.identifiers import check_new
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session
from flask_lucia.web.base import (
    error_response,
    presented_device,
    same_origin,
    state,
)
from flask_lucia.web.blueprint import (
    _CREDENTIAL_FAILURES,
    _bad_request,
    _form_page,
    _sign_up_form,
    bp,
    forms_enabled,
    home_url,
)
from flask_lucia.web.forms import (
    SignUpForm,
    sign_in_form,
)
from flask_lucia.web.pages import error_page, refused
from flask_lucia.web.pipeline import after_sign_up, finish_sign_in
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url


def _credentials(*, check_origin: bool = True) -> tuple[dict[str, Any], str, str] | Response:
    """A sign-in/up request's JSON object, identifier and password; or a 403 or 400."""
    if check_origin and not same_origin(required=False):  # login CSRF: a browser elsewhere
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request("expected a JSON object with 'identifier' and 'password'")
    first = state().settings.password_provider
    identifier, password = body.get("identifier", body.get(first)), body.get("password")
    if not isinstance(identifier, str) or not identifier.strip():
        return _bad_request("'identifier' must be a non-empty string")
    if not isinstance(password, str) or not password:
        return _bad_request("'password' must be a non-empty string")
    return body, identifier.strip(), password


def requested_transport() -> str | Response:
    """Where a JSON request wants its tokens: ``"cookie"`` (the default) or ``"body"`` (API
    and native clients: tokens in the JSON, no cookie set or cleared); else a 400."""
    body = request.get_json(silent=True)
    value = body.get("transport", "cookie") if isinstance(body, dict) else "cookie"
    if value not in ("cookie", "body"):
        return _bad_request('\'transport\' must be "body" or "cookie"')
    return str(value)


def needs_origin_check(transport: str) -> bool:
    """Whether a sign-in/up needs the login-CSRF check: always, but for a body-transport
    request without auth cookies, which sets no cookie a cross-site page could plant."""
    if transport == "cookie":
        return True
    settings, cookies = state().settings, request.cookies
    return settings.access_cookie in cookies or settings.refresh_cookie in cookies


def remember_choice(body: dict[str, Any]) -> bool | Response:
    """``remember`` of a sign-in/up body (default true), or a 400 for a non-boolean."""
    value = body.get("remember", True)
    if not isinstance(value, bool):
        return _bad_request("'remember' must be true or false")
    return value


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_endpoint() -> ResponseReturnValue:
    """Sign in: JSON for scripts, a Flask-WTF form for browsers."""
    if request.method == "POST" and (request.is_json or not forms_enabled()):
        return _sign_in_json()
    if request.method == "POST" and not same_origin(required=False):
        return refused()
    if request.method == "GET" and request_state.get("_lucia_user") is not None:
        return send_on()
    form = sign_in_form()
    if form.validate_on_submit():
        identifier = (form.identifier.data or "").strip()
        try:
            user, key = _authenticate(identifier, form.password.data or "")
        except LuciaError as error:
            return _form_page("lucia/sign_in.html", form, error)
        # DESIGN §19: the stages decide (a pending sign-in for a second factor, no session).
        return finish_sign_in(
            user,
            ("pwd",),
            key=key,
            next_url=safe_next_url(form.next.data) or home_url(),
            remember=bool(form.remember.data),
        )
    return _form_page("lucia/sign_in.html", form)


@bp.route("/sign-up", methods=["GET", "POST"], endpoint="sign_up")
def sign_up_endpoint() -> ResponseReturnValue:
    """Sign up: JSON for scripts, a Flask-WTF form (with the app's user columns) for browsers."""
    if not state().settings.sign_up:
        return _sign_up_closed()
    if request.method == "POST" and (request.is_json or not forms_enabled()):
        return _sign_up_json()
    if request.method == "POST" and not same_origin(required=False):
        return refused()
    if request.method == "GET" and request_state.get("_lucia_user") is not None:
        return send_on()
    form = _sign_up_form()
    if form.validate_on_submit():
        data = {name: form[name].data for name in form.data_fields}
        more = {name: (form[name].data or "").strip() for name in form.key_fields}
        identifier = (form.identifier.data or "").strip()
        if not _fields_valid(form, identifier):
            return _form_page("lucia/sign_up.html", form)
        try:
            user = _create(identifier, form.password.data or "", data, more)
        except LuciaError as error:
            return _form_page("lucia/sign_up.html", form, error)
        except (TypeError, ValueError) as error:
            return _form_page(
                "lucia/sign_up.html", form, LuciaError("AUTH_INVALID_REQUEST", str(error))
            )
        next_url = safe_next_url(form.next.data) or home_url()
        key = (state().settings.password_provider, identifier)
        return finish_sign_in(user, ("pwd",), key=key, next_url=next_url, new_account=True)
    return _form_page("lucia/sign_up.html", form)


def send_on() -> ResponseReturnValue:
    """A signed-in user has no use for sign-in or sign-up: on to ``next``, or home."""
    return redirect(safe_next_url(request.args.get("next")) or home_url(), 303)


def _sign_up_closed() -> Response:
    """404 on every channel while ``LUCIA_SIGN_UP`` is off: a page for browsers, else JSON."""
    return error_page(LuciaError("AUTH_INVALID_REQUEST", "Sign-up is closed."), 404)


def _authenticate(identifier: str, password: str) -> tuple[Any, tuple[str, str]]:
    """Password sign-in by any of ``LUCIA_PASSWORD_PROVIDERS``: the user and the
    ``(provider, identifier)`` key it proved; an unknown user and a wrong password raise
    the same error."""
    auth = state()
    try:
        key = auth.password_key(identifier)
        user = auth.authenticate_user(
            *key, password, client_address=request.remote_addr, device=presented_device()
        )
        return user, key
    except ValueError:  # an identifier no user can have (too long)
        raise LuciaError("AUTH_INVALID_PASSWORD") from None
    except LuciaError as error:
        if error.code in _CREDENTIAL_FAILURES:
            raise LuciaError("AUTH_INVALID_PASSWORD") from None
        raise


def confirm_password(session: Session, password: str) -> Session:
    """Re-authentication; its failures answer as the sign-in's do."""
    try:
        return state().reauthenticate(
            session, password, client_address=request.remote_addr, device=presented_device()
        )
    except LuciaError as error:
        if error.code in _CREDENTIAL_FAILURES:
            raise LuciaError("AUTH_INVALID_PASSWORD") from None
        raise


def _fields_valid(form: SignUpForm, identifier: str) -> bool:
    """Check the identifier and the new password before anything is written, each error
    in plain words under its own field (both at once, so one hides neither)."""
    auth = state()
    try:
        check_new(auth.settings.password_provider, identifier)
    except ValueError:
        form.identifier.errors = [messages.invalid_identifier()]
    try:
        auth.hasher.normalize(form.password.data or "", new=True)
    except LuciaError as error:
        form.password.errors = [error.message]
    return not (form.identifier.errors or form.password.errors)


def _create(
    identifier: str, password: str, data: dict[str, Any], more: dict[str, str] | None = None
) -> Any:
    """Create the user (``more``: the identifiers of the other password providers); a
    clash names the field in the user's words ("This username is taken", "An account
    with this email already exists")."""
    auth = state()
    try:
        user = auth.create_user(
            auth.settings.password_provider,
            identifier,
            password=password,
            user_data=data,
            more_keys=list((more or {}).items()),
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
    transport = requested_transport()
    if isinstance(transport, Response):
        return transport
    parsed = _credentials(check_origin=needs_origin_check(transport))
    if isinstance(parsed, Response):
        return parsed
    body, identifier, password = parsed
    remember = remember_choice(body)
    if isinstance(remember, Response):
        return remember
    return body, identifier, password, transport, remember


def _sign_in_json() -> ResponseReturnValue:
    options = _json_options()
    if isinstance(options, Response):
        return options
    _, identifier, password, transport, remember = options
    user, key = _authenticate(identifier, password)  # failures: in the user's words
    # DESIGN §19: the same stages as a form's; a pending answer carries no token.
    return finish_sign_in(user, ("pwd",), key=key, remember=remember, transport=transport)


def _sign_up_json() -> ResponseReturnValue:
    options = _json_options()
    if isinstance(options, Response):
        return options
    body, identifier, password, transport, remember = options
    columns = state().settings.sign_up_columns
    more = _more_identifiers(body)
    if isinstance(more, Response):
        return more
    try:
        data = {k: v for k, v in body.items() if k in columns and k not in more}
        user = _create(identifier, password, data, more)
    except (TypeError, ValueError) as exc:
        return _bad_request(str(exc))
    key = (state().settings.password_provider, identifier)
    response = finish_sign_in(
        user, ("pwd",), key=key, remember=remember, transport=transport, new_account=True
    )
    if response.status_code == 200:
        response.status_code = 201
    return response


def _more_identifiers(body: dict[str, Any]) -> dict[str, str] | Response:
    """A sign-up's identifiers for the password providers after the first (JSON
    ``{"email", "username", ...}``): each a key of the new account; or a 400."""
    more = {}
    for provider in state().settings.password_providers[1:]:
        value = body.get(provider)
        if not isinstance(value, str) or not value.strip():
            return _bad_request(f"'{provider}' must be a non-empty string")
        more[provider] = value.strip()
    return more
