"""The email flows' pages and their JSON twins (DESIGN §13), on the ``lucia`` blueprint:
verify the address, reset a forgotten password, change the password or the address, and
delete the account.

Each path answers a Flask-WTF form (HTML) or JSON (a JSON body, a JSON ``Accept``, or
every request while ``LUCIA_REGISTER_VIEWS`` is off). Pages that carry a token in their
URL send ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia.config import HOST_PREFIX
from flask_lucia.email.flows import RESET_SENT, Emails
from flask_lucia.errors import LuciaError
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.web.base import error_response, same_origin, set_retry_after, state
from flask_lucia.web.blueprint import bp
from flask_lucia.web.decorators import (
    factors_required,
    fresh_login_required,
    login_required,
    second_factor_needed,
    wants_json,
)
from flask_lucia.web.forms import (
    ButtonForm,
    ChangePasswordForm,
    DeleteAccountForm,
    EmailForm,
    NewPasswordForm,
    form_options,
)
from flask_lucia.web.hook import sign_in, sign_out
from flask_lucia.web.notices import where_and_when
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url
from flask_lucia.web.script import session_body

#: What a form that failed its CSRF check says (the page and its token expired).
FORM_EXPIRED = "This form expired. Please try again."


def _emails() -> Emails:
    found: Emails = current_app.extensions["lucia_email"]
    return found


def _forms_enabled() -> bool:
    return bool(current_app.config["LUCIA_REGISTER_VIEWS"])


def _json_post() -> bool:
    """A POST answered in JSON: a JSON body, or any POST while the form views are off."""
    return request.method == "POST" and (request.is_json or not _forms_enabled())


def _json_body(*names: str, optional: tuple[str, ...] = ()) -> dict[str, str] | Response:
    """The named non-empty string fields of a JSON object body (and those of ``optional``
    that are present, as strings), or a 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request(f"expected a JSON object with {', '.join(map(repr, names))}")
    values = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            return _bad_request(f"{name!r} must be a non-empty string")
        values[name] = value
    for name in optional:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            return _bad_request(f"{name!r} must be a string")
        if value is not None:
            values[name] = value
    return values


def _bad_request(message: str) -> Response:
    return error_response(LuciaError("AUTH_INVALID_REQUEST", message), 400)


def _not_sent() -> Response:
    """JSON for a mail that could not be sent: 503, and the user's words."""
    return error_response(LuciaError("UNKNOWN_ERROR", NOT_SENT), 503)


def _page(
    template: str, status: int = 200, error: LuciaError | str | None = None, **context: Any
) -> Response:
    """Render one of the flows' pages; an error is flashed (429 adds ``Retry-After``)."""
    if not _forms_enabled():
        raise NotFound()
    message = error.message if isinstance(error, LuciaError) else error
    if message and current_app.secret_key:
        flash(message, "error")
        message = None
    response = current_app.make_response(render_template(template, error=message, **context))
    response.status_code = status
    if isinstance(error, LuciaError):
        set_retry_after(response, error)
    return response


def _failed_form(template: str, form: Any, **context: Any) -> Response:
    """A posted form that did not validate: 400, and say so when its token expired."""
    csrf_failed = "csrf_token" in getattr(form, "errors", {})
    return _page(template, 400, FORM_EXPIRED if csrf_failed else None, form=form, **context)


def _token_page(response: BaseResponse) -> BaseResponse:
    """A page whose URL holds a token: no Referer carries it away, no cache keeps it."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _invalid_link(error: LuciaError, again: str) -> Response:
    """A link that does not work: JSON 400 ``AUTH_INVALID_TOKEN``, or a page that says so."""
    if wants_json() or not _forms_enabled():
        return error_response(error)
    return _page("lucia/invalid_link.html", error.status, error.message, again=again)


def _user_id() -> Any:
    """The signed-in user's id (views behind ``login_required``)."""
    return request_state._lucia_session.user_id


# -- email verification -----------------------------------------------------------------


@bp.route("/verify-email", methods=["GET", "POST"], endpoint="verify_email")
@login_required
def verify_email() -> ResponseReturnValue:
    """The verification page (the address and whether it is verified); POST resends."""
    emails, user_id = _emails(), _user_id()
    next_path = safe_next_url(request.values.get("next"))
    if request.method == "GET":
        address, verified = emails.address(user_id), emails.email_verified(user_id)
        if wants_json() or not _forms_enabled():
            return jsonify({"email": address, "verified": verified is not None})
        form = ButtonForm(**form_options())
        return _page(
            "lucia/verify_email.html", form=form, email=address, verified=verified, next=next_path
        )
    as_json = _json_post()
    form = ButtonForm(**form_options())
    if not as_json and not form.validate_on_submit():
        return _failed_form("lucia/verify_email.html", form, email=emails.address(user_id))
    try:
        sent = emails.send_verification(user_id, client_address=request.remote_addr)
    except (LuciaError, MailError) as error:
        if as_json:
            return _not_sent() if isinstance(error, MailError) else error_response(error)
        failure = LuciaError("UNKNOWN_ERROR", NOT_SENT) if isinstance(error, MailError) else error
        status = 503 if isinstance(error, MailError) else error.status
        return _page(
            "lucia/verify_email.html",
            status,
            failure,
            form=form,
            email=emails.address(user_id),
            verified=None,
            next=next_path,
        )
    if as_json:
        return jsonify({"sent": sent is not None, "email": sent, "verified": sent is None})
    if sent is not None:
        flash(f"A new link is on its way to {sent}.", "info")
    return redirect(url_for("lucia.verify_email", next=next_path), 303)


@bp.get("/verify-email/<token>", endpoint="verify_email_link")
def verify_email_link(token: str) -> ResponseReturnValue:
    """The link in a verification mail: the address is verified."""
    try:
        _, address = _emails().verify(token)
    except LuciaError as error:
        if error.code != "AUTH_INVALID_TOKEN":
            raise
        return _token_page(_invalid_link(error, url_for("lucia.verify_email")))
    if wants_json() or not _forms_enabled():
        return _token_page(jsonify({"verified": True, "email": address}))
    request_state.pop(
        "_lucia_unverified", None
    )  # this request's user, if it is theirs, is verified now
    return _token_page(_page("lucia/email_verified.html", email=address))


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
        body = _json_body("email")
        if isinstance(body, Response):
            return body
        try:
            _emails().request_reset(body["email"], client_address=request.remote_addr)
        except ValueError as error:
            return _bad_request(str(error))
        except LuciaError as error:
            return error_response(error)
        except MailError:
            return _not_sent()
        return jsonify({"message": RESET_SENT})
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
    return _page("lucia/email_sent.html", title="Check your email", message=RESET_SENT)


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
            user = emails.reset_password(
                token, body["password"], body.get("code"), notice=where_and_when()
            )
        except LuciaError as error:
            return error_response(error)
        session = sign_in(user, fresh=True, mfa=_proved_second_factor(user))
        return jsonify(session_body(user, session))
    if request.method == "POST":
        return _new_password(token)
    try:
        emails.check_reset(token)
    except LuciaError as error:
        return _invalid_link(error, url_for("lucia.reset_password"))
    if wants_json() or not _forms_enabled():
        return jsonify({"valid": True})
    response = redirect(url_for("lucia.reset_password"), 303)
    _set_reset_cookie(response, token, emails.auth.settings.reset_ttl // 1000)
    return response


def _proved_second_factor(user: Any) -> bool:
    """After a reset: whether it took the account's second factor (it does whenever the
    account has one), so the new session counts as MFA."""
    auth = _emails().auth
    return auth.has_second_factor(auth.users.id_of(user))


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
        user = emails.reset_password(
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
    sign_in(user, fresh=True, mfa=_proved_second_factor(user))
    flash("Your password has been changed, and every other device signed out.", "info")
    done = redirect("/", 303)
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


# -- change password --------------------------------------------------------------------


@bp.route("/change-password", methods=["GET", "POST"], endpoint="change_password")
@login_required
def change_password() -> ResponseReturnValue:
    """Change the password with the current one (which makes the session fresh), and the
    second factor proved when the account has one; other sessions end; the user is told."""
    emails, session = _emails(), request_state._lucia_session
    if not session.mfa and emails.auth.has_second_factor(session.user_id):
        return second_factor_needed()
    if _json_post():
        body = _json_body("current_password", "new_password")
        if isinstance(body, Response):
            return body
        try:
            emails.change_password(
                session,
                body["current_password"],
                body["new_password"],
                client_address=request.remote_addr,
                notice=where_and_when(),
            )
        except LuciaError as error:
            return error_response(error)
        return jsonify({"changed": True})
    form = ChangePasswordForm(**form_options())
    if request.method == "GET":
        return _page("lucia/change_password.html", form=form)
    if not form.validate_on_submit():
        return _failed_form("lucia/change_password.html", form)
    new = form.password.data or ""
    try:
        emails.auth.hasher.normalize(new, new=True)
    except LuciaError as error:
        form.password.errors = [error.message]
        return _page("lucia/change_password.html", 400, form=form)
    try:
        emails.change_password(
            session,
            form.current_password.data or "",
            new,
            client_address=request.remote_addr,
            notice=where_and_when(),
        )
    except LuciaError as error:
        if error.code == "AUTH_INVALID_PASSWORD":
            form.current_password.errors = ["The current password is wrong."]
            return _page("lucia/change_password.html", 400, form=form)
        return _page("lucia/change_password.html", error.status, error, form=form)
    flash("Your password has been changed, and your other devices signed out.", "info")
    return redirect("/", 303)


# -- change email -----------------------------------------------------------------------


@bp.route("/change-email", methods=["GET", "POST"], endpoint="change_email")
@factors_required
def change_email() -> ResponseReturnValue:
    """Ask to move the account to a new address: a link goes there, and the switch
    happens when it is opened."""
    emails, user_id = _emails(), _user_id()
    if _json_post():
        body = _json_body("email")
        if isinstance(body, Response):
            return body
        try:
            address = emails.request_email_change(
                user_id, body["email"], client_address=request.remote_addr
            )
        except ValueError as error:
            return _bad_request(str(error))
        except LuciaError as error:
            return error_response(error)
        except MailError:
            return _not_sent()
        return jsonify({"email": address, "message": _link_sent(address)})
    form = EmailForm(**form_options())
    form.email.label.text = "New email"
    current = emails.address(user_id)
    if request.method == "GET":
        return _page("lucia/change_email.html", form=form, email=current)
    if not form.validate_on_submit():
        return _failed_form("lucia/change_email.html", form, email=current)
    try:
        address = emails.request_email_change(
            user_id, form.email.data or "", client_address=request.remote_addr
        )
    except ValueError as error:
        form.email.errors = [str(error)]
        return _page("lucia/change_email.html", 400, form=form, email=current)
    except LuciaError as error:
        return _page("lucia/change_email.html", error.status, error, form=form, email=current)
    except MailError:
        return _page("lucia/change_email.html", 503, NOT_SENT, form=form, email=current)
    return _page("lucia/email_sent.html", title="Check your email", message=_link_sent(address))


def _link_sent(address: str) -> str:
    return f"To finish, open the link we sent to {address}."


@bp.get("/change-email/<token>", endpoint="change_email_link")
def change_email_link(token: str) -> ResponseReturnValue:
    """The link in a change-of-address mail: the account's email becomes this address."""
    try:
        _, _, address = _emails().change_email(token, notice=where_and_when())
    except LuciaError as error:
        if error.code == "AUTH_INVALID_TOKEN":
            return _token_page(_invalid_link(error, url_for("lucia.change_email")))
        if error.code != "AUTH_DUPLICATE_PROVIDER_ID":
            raise
        if wants_json() or not _forms_enabled():
            return _token_page(error_response(error))
        return _token_page(
            _page("lucia/invalid_link.html", 409, error, again=url_for("lucia.change_email"))
        )
    if wants_json() or not _forms_enabled():
        return _token_page(jsonify({"email": address}))
    return _token_page(_page("lucia/email_changed.html", email=address))


# -- delete account ---------------------------------------------------------------------


@bp.route("/delete-account", methods=["GET", "POST"], endpoint="delete_account")
@fresh_login_required
def delete_account() -> ResponseReturnValue:
    """Delete the signed-in user's account (fresh session; ``LUCIA_ACCOUNT_DELETION``)."""
    auth = state()
    if not auth.settings.account_deletion:
        if wants_json() or not _forms_enabled():
            closed = LuciaError("AUTH_INVALID_REQUEST", "Accounts cannot be deleted here.")
            return error_response(closed, 404)
        raise NotFound()
    user_id = _user_id()
    if _json_post():
        try:
            auth.delete_user(user_id)
        except LuciaError as error:
            return error_response(error)
        sign_out()
        return jsonify({"deleted": True})
    form = DeleteAccountForm(**form_options())
    if request.method == "GET":
        return _page("lucia/delete_account.html", form=form)
    if not form.validate_on_submit():
        return _failed_form("lucia/delete_account.html", form)
    try:
        auth.delete_user(user_id)
    except LuciaError as error:
        return _page("lucia/delete_account.html", error.status, error, form=form)
    sign_out()
    flash("Your account has been deleted.", "info")
    return redirect("/", 303)
