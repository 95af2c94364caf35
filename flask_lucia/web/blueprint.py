"""The ``lucia`` blueprint every feature adds its routes to: its error handlers and headers,
its static files (``lucia.js``, ``lucia.css``, ``lucia.d.ts``), and the helpers its form
pages share.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    has_request_context,
    render_template,
    request,
    send_from_directory,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge

from flask_lucia import messages
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.web.base import (
    error_response,
    set_retry_after,
    state,
)
from flask_lucia.web.extras import refuse_missing
from flask_lucia.web.forms import (
    ConfirmForm,
    SignInForm,
    SignUpForm,
    confirm_form,
    sign_in_form,
    sign_up_form,
)
from flask_lucia.web.pages import error_page, http_error, refuse_framing
from flask_lucia.web.redirects import safe_next_url

#: The package's folder: its templates and static files live there, for every feature.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bp = Blueprint(
    "lucia", __name__, template_folder="templates", static_folder=None, root_path=_PACKAGE
)
_STATIC = os.path.join(_PACKAGE, "static")
bp.before_request(refuse_missing)  # a feature whose extra is missing: 404 naming the extra

_STATIC_ENDPOINTS = frozenset(
    {"lucia.script", "lucia.pages_script", "lucia.typings", "lucia.stylesheet"}
)
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
    if request.is_json or not forms_enabled():
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


def home_url() -> str:
    """The app's home page: its root path (under ``SCRIPT_NAME`` when mounted)."""
    return request.script_root + "/"


def _bad_request(message: str) -> Response:
    return error_response(LuciaError("AUTH_INVALID_REQUEST", message), 400)


@bp.get("/lucia.js")
def script() -> Response:
    """The browser module: static, cacheable, revalidated by ETag."""
    return send_from_directory(_STATIC, "lucia.js", mimetype="text/javascript", max_age=3600)


@bp.get("/lucia-pages.js", endpoint="pages_script")
def pages_script() -> Response:
    """The built-in pages' own script (no inline script, for a strict CSP): it wires the
    ``data-lucia-*`` elements and reloads a page when another tab signs in or out."""
    return send_from_directory(_STATIC, "lucia-pages.js", mimetype="text/javascript", max_age=3600)


@bp.app_context_processor
def _home_link() -> dict[str, str]:
    """``lucia_home`` in templates: the app's home page, the built-in pages' way back."""
    return {"lucia_home": home_url() if has_request_context() else "/"}


@bp.get("/lucia.css", endpoint="stylesheet")
def stylesheet() -> Response:
    """The one stylesheet of the built-in pages: static, cacheable, revalidated by ETag."""
    return send_from_directory(_STATIC, "lucia.css", mimetype="text/css", max_age=3600)


@bp.get("/lucia.d.ts")
def typings() -> Response:
    """TypeScript declarations of the browser module."""
    return send_from_directory(_STATIC, "lucia.d.ts", mimetype="text/plain", max_age=3600)


def forms_enabled() -> bool:
    """Whether browsers get the blueprint's pages and forms (``LUCIA_REGISTER_VIEWS``)."""
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
    if not forms_enabled():
        raise NotFound()
    if request.method == "GET":
        form.next.data = safe_next_url(request.args.get("next")) or ""
    if error is not None:
        error = messages.for_user(error, _ACTIONS.get(request.endpoint or "", "sign_in"))
    message = None if error is None else error.message
    if request.method == "POST" and error is None and (expired or _token_failed(form)):
        message = gettext(messages.FORM_EXPIRED)
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


def _sign_up_form() -> SignUpForm:
    """This app's sign-up form: identifier, password and the ``LUCIA_SIGN_UP_COLUMNS``."""
    auth = state()
    settings = auth.settings
    columns = [auth.storage.users.c[n] for n in settings.sign_up_columns]
    return sign_up_form(columns, settings.password_providers)
