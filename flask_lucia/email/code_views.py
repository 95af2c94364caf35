"""Signing in with a code sent by mail (DESIGN §23): the page pair for browsers (ask for a
code; type it) and their JSON twins, while ``LUCIA_EMAIL_CODE_SIGN_IN`` is on (else 404).

``POST /auth/sign-in/code {"email"}`` answers alike for every address;
``POST /auth/sign-in/code/verify {"email", "code"}`` signs in from any browser, through the
sign-in pipeline like a password does (``transport: "body"`` for API clients).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from flask_lucia.core.store.schema import EMAIL_PROVIDER
from flask_lucia.email.code_flow import CODE_SENT, SignInCodes
from flask_lucia.email.forms import CodeRequestForm, CodeSignInForm
from flask_lucia.email.text import duration
from flask_lucia.email.views import (
    _failed_form,
    _json_body,
    _json_post,
    _mail_json,
    _page,
)
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.web.base import error_response, presented_device, same_origin
from flask_lucia.web.blueprint import bp, home_url
from flask_lucia.web.credentials import (
    needs_origin_check,
    remember_choice,
    requested_transport,
    send_on,
)
from flask_lucia.web.forms import form_options
from flask_lucia.web.pages import refused
from flask_lucia.web.pipeline import finish_sign_in
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url

ASK_PAGE, CODE_PAGE = "lucia/sign_in_code.html", "lucia/sign_in_code_verify.html"


def _codes() -> SignInCodes:
    """This app's sign-in codes; a 404 while ``LUCIA_EMAIL_CODE_SIGN_IN`` is off."""
    codes: SignInCodes | None = current_app.extensions.get("lucia_email_codes")
    if codes is None or not codes.auth.settings.email_code_sign_in:
        raise NotFound()
    return codes


@bp.route("/sign-in/code", methods=["GET", "POST"], endpoint="sign_in_code")
def sign_in_code() -> ResponseReturnValue:
    """Ask for a code: the same answer whether an account uses the address. A browser is
    shown the page to type the code on."""
    codes = _codes()
    if request.method == "POST" and not same_origin(required=False):
        return refused()
    if _json_post():

        def send(email: str) -> dict[str, Any]:
            codes.request(email, client_address=request.remote_addr)
            return {"message": gettext(CODE_SENT)}

        return _mail_json(send)
    if request.method == "GET" and request_state.get("_lucia_user") is not None:
        return send_on()
    form = CodeRequestForm(**form_options())
    if request.method == "GET":
        form.next.data = safe_next_url(request.args.get("next")) or ""
        return _page(ASK_PAGE, form=form)
    if not form.validate_on_submit():
        return _failed_form(ASK_PAGE, form)
    email = (form.email.data or "").strip()
    try:
        codes.request(email, client_address=request.remote_addr)
    except ValueError as error:
        form.email.errors = [str(error)]
        return _page(ASK_PAGE, 400, form=form)
    except LuciaError as error:
        return _page(ASK_PAGE, error.status, error, form=form)
    except MailError:
        return _page(ASK_PAGE, 503, NOT_SENT, form=form)
    typing = CodeSignInForm(**form_options(), formdata=None)
    typing.email.data, typing.next.data = email, safe_next_url(form.next.data) or ""
    expires_in = duration(codes.auth.settings.email_code_ttl)
    return _page(CODE_PAGE, form=typing, sent=True, expires_in=expires_in)


@bp.route("/sign-in/code/verify", methods=["GET", "POST"], endpoint="sign_in_code_verify")
def sign_in_code_verify() -> ResponseReturnValue:
    """Type the code (on any browser): signed in through the sign-in pipeline."""
    codes = _codes()
    if _json_post():
        return _verify_json(codes)
    if request.method == "POST" and not same_origin(required=False):
        return refused()
    if request.method == "GET" and request_state.get("_lucia_user") is not None:
        return send_on()
    form = CodeSignInForm(**form_options())
    if request.method == "GET":
        form.email.data = request.args.get("email", "")[:255]
        form.next.data = safe_next_url(request.args.get("next")) or ""
        return _page(CODE_PAGE, form=form, sent=False)
    if not form.validate_on_submit():
        return _failed_form(CODE_PAGE, form, sent=False)
    email = (form.email.data or "").strip()
    try:
        user = codes.verify(
            email,
            form.code.data,
            client_address=request.remote_addr,
            device=presented_device(),
        )
    except LuciaError as error:
        return _page(CODE_PAGE, error.status, error, form=form, sent=False)
    next_url = safe_next_url(form.next.data)
    return _finish(user, email, None, bool(form.remember.data), next_url)


def _verify_json(codes: SignInCodes) -> ResponseReturnValue:
    """``{"email", "code"}`` (and ``transport``, ``remember`` as at sign-in): signed in.
    Failures answer JSON through the blueprint's ``LuciaError`` handler."""
    transport = requested_transport()
    if isinstance(transport, Response):
        return transport
    if needs_origin_check(transport) and not same_origin(required=False):  # login CSRF
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    body = _json_body("email", "code")
    if isinstance(body, Response):
        return body
    remember = remember_choice(request.get_json(silent=True) or {})
    if isinstance(remember, Response):
        return remember
    user = codes.verify(
        body["email"],
        body["code"],
        client_address=request.remote_addr,
        device=presented_device(),
    )
    return _finish(user, body["email"], transport, remember, None)


def _finish(
    user: Any, email: str, transport: str | None, remember: bool, next_url: str | None
) -> ResponseReturnValue:
    """This way in meets the sign-in pipeline here (a form when ``transport`` is None):
    amr ``("code",)``, so an account with a second factor is still asked for it."""
    key = (EMAIL_PROVIDER, email.strip())
    if transport is None:
        return finish_sign_in(
            user, ("code",), key=key, next_url=next_url or home_url(), remember=remember
        )
    return finish_sign_in(user, ("code",), key=key, remember=remember, transport=transport)
