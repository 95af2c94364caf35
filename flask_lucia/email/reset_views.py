"""Resetting a forgotten password by a mailed link (DESIGN §13); an account with a second
factor gives its code on the same page before the new password is taken.

Each path answers a Flask-WTF form (HTML) or JSON (a JSON body, a JSON ``Accept``, or
every request while ``LUCIA_REGISTER_VIEWS`` is off). Pages that carry a token in their
URL send ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    flash,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia import messages
from flask_lucia.config import HOST_PREFIX
from flask_lucia.email.flows import RESET_SENT
from flask_lucia.email.views import (
    _emails,
    _failed_form,
    _invalid_link,
    _json_body,
    _json_post,
    _mail_json,
    _page,
    _token_page,
)
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.web.base import error_response, same_origin, state
from flask_lucia.web.blueprint import bp, forms_enabled
from flask_lucia.web.decorators import (
    wants_json,
)
from flask_lucia.web.forms import (
    EmailForm,
    NewPasswordForm,
    form_options,
)
from flask_lucia.web.notices import where_and_when
from flask_lucia.web.pipeline import finish_sign_in

# -- password reset ---------------------------------------------------------------------


#: Carries a reset link's token from the link to the form page (HttpOnly, SameSite=Lax, one
#: hour at most), so the page people type into has no token in its URL: its form posts
#: with an ordinary ``Origin``, which a page under ``no-referrer`` would send as ``null``.
RESET_COOKIE = "lucia_reset"


@bp.route("/reset-password", methods=["GET", "POST"], endpoint="reset_password")
def reset_password() -> ResponseReturnValue:
    """Ask for a reset link (the answer is the same whether an account uses the address);
    with a link's token in its cookie, the form for the new password."""
    if request.method == "POST" and not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    if _json_post():

        def send(email: str) -> dict[str, Any]:
            _emails().request_reset(email, client_address=request.remote_addr)
            return {"message": gettext(RESET_SENT)}

        return _mail_json(send)
    token = request.cookies.get(_reset_cookie_name())
    if token and (request.method == "GET" or "password" in request.form):
        return _new_password(token)
    form = EmailForm(**form_options())
    if request.method == "GET":
        return _page("lucia/reset_request.html", form=form)
    if not form.validate_on_submit():
        return _failed_form("lucia/reset_request.html", form)
    try:
        _emails().request_reset(form.email.data or "", client_address=request.remote_addr)
    except ValueError as error:
        form.email.errors = [str(error)]
        return _page("lucia/reset_request.html", 400, form=form)
    except LuciaError as error:
        return _page("lucia/reset_request.html", error.status, error, form=form)
    except MailError:
        return _page("lucia/reset_request.html", 503, NOT_SENT, form=form)
    return _page(
        "lucia/email_sent.html",
        title=gettext("Check your email"),
        message=gettext(RESET_SENT),
        back=url_for("lucia.sign_in"),
        back_label=gettext("Back to sign in"),
    )


@bp.route("/reset-password/<token>", methods=["GET", "POST"], endpoint="reset_password_link")
def reset_password_link(token: str) -> ResponseReturnValue:
    """The link in a reset mail: choose a new password. Success ends every session, marks
    the address verified and signs this browser in with a new session. A browser is sent
    on to the form page with the token in a cookie; JSON clients post ``{"password"}``."""
    return _token_page(_reset_password_link(token))


def _reset_password_link(token: str) -> BaseResponse:
    emails = _emails()
    if request.method == "POST" and not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    if _json_post():
        body = _json_body("password", optional=("code",))
        if isinstance(body, Response):
            return body
        try:
            user, amr = emails.reset_password(
                token, body["password"], body.get("code"), notice=where_and_when()
            )
        except LuciaError as error:
            return error_response(error)
        return finish_sign_in(user, amr)  # DESIGN §19: the stages run for a link too
    if request.method == "POST":
        return _new_password(token)
    try:
        emails.check_reset(token)
    except LuciaError as error:
        return _invalid_link(error, url_for("lucia.reset_password"))
    if wants_json() or not forms_enabled():
        return jsonify({"valid": True})
    response = redirect(url_for("lucia.reset_password"), 303)
    _set_reset_cookie(response, token, emails.auth.settings.reset_ttl // 1000)
    return response


def _new_password(token: str) -> BaseResponse:
    """The new-password form of a reset link's ``token``: shown, or posted and done."""
    emails = _emails()
    try:
        user_id = emails.check_reset(token)
    except LuciaError as error:
        response = _invalid_link(error, url_for("lucia.reset_password"))
        _set_reset_cookie(response, "", 0)
        return response
    form = NewPasswordForm(**form_options())
    needs_code = emails.second_factor_required(user_id)
    if request.method == "GET":
        return _page("lucia/reset_password.html", form=form, needs_code=needs_code)
    if not form.validate_on_submit():
        return _failed_form("lucia/reset_password.html", form, needs_code=needs_code)
    try:
        user, amr = emails.reset_password(
            token, form.password.data or "", form.code.data or None, notice=where_and_when()
        )
    except LuciaError as error:
        if error.code == "AUTH_INVALID_TOKEN":  # spent meanwhile (another tab)
            gone = _invalid_link(error, url_for("lucia.reset_password"))
            _set_reset_cookie(gone, "", 0)
            return gone
        wrong_code = error.code in ("AUTH_SECOND_FACTOR_REQUIRED", "AUTH_INVALID_CODE")
        (form.code if wrong_code else form.password).errors = [error.message]
        return _page("lucia/reset_password.html", error.status, form=form, needs_code=needs_code)
    # The pipeline decides (an enrolment may still be asked); the outcome page says it.
    done = finish_sign_in(user, amr, next_url=url_for("lucia.done", what="password_reset"))
    if done.status_code < 400:
        flash(gettext(messages.PASSWORD_RESET), "success")
    _set_reset_cookie(done, "", 0)
    return done


def _reset_cookie_name() -> str:
    """``lucia_reset``, ``__Host-`` prefixed like the auth cookies when they are."""
    prefixed = state().settings.access_cookie.startswith(HOST_PREFIX)
    return HOST_PREFIX + RESET_COOKIE if prefixed else RESET_COOKIE


def _set_reset_cookie(response: BaseResponse, token: str, max_age: int) -> None:
    """Set (or with ``max_age`` 0, delete) the reset cookie: HttpOnly, SameSite=Lax,
    host-only, on the reset page's path (``/`` when ``__Host-``)."""
    name = _reset_cookie_name()
    path = "/" if name.startswith(HOST_PREFIX) else url_for("lucia.reset_password")
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        path=path,
        secure=state().cookie_secure(),
        httponly=True,
        samesite="Lax",
    )
