"""Changing the password or the address, and deleting the account (DESIGN §13).

Each path answers a Flask-WTF form (HTML) or JSON (a JSON body, a JSON ``Accept``, or
every request while ``LUCIA_REGISTER_VIEWS`` is off). Pages that carry a token in their
URL send ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    jsonify,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from flask_lucia import messages
from flask_lucia.email.views import (
    _emails,
    _failed_form,
    _invalid_link,
    _json_body,
    _json_post,
    _mail_json,
    _page,
    _token_page,
    _user_id,
)
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.web.base import error_response, state
from flask_lucia.web.blueprint import bp, forms_enabled
from flask_lucia.web.decorators import (
    factors_required,
    fresh_login_required,
    login_required,
    second_factor_needed,
    wants_json,
)
from flask_lucia.web.forms import (
    ChangePasswordForm,
    DeleteAccountForm,
    EmailForm,
    form_options,
)
from flask_lucia.web.hook import sign_out
from flask_lucia.web.notices import where_and_when
from flask_lucia.web.pages import outcome
from flask_lucia.web.proxies import request_state

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
            form.current_password.errors = [gettext("The current password is wrong.")]
            return _page("lucia/change_password.html", 400, form=form)
        return _page("lucia/change_password.html", error.status, error, form=form)
    return outcome("password_changed", messages.PASSWORD_CHANGED)


# -- change email -----------------------------------------------------------------------


@bp.route("/change-email", methods=["GET", "POST"], endpoint="change_email")
@factors_required
def change_email() -> ResponseReturnValue:
    """Ask to move the account to a new address: a link goes there, and the switch
    happens when it is opened."""
    emails, user_id = _emails(), _user_id()
    if _json_post():

        def send(email: str) -> dict[str, Any]:
            address = emails.request_email_change(
                user_id, email, client_address=request.remote_addr
            )
            return {"email": address, "message": _link_sent(address)}

        return _mail_json(send)
    form = EmailForm(**form_options())
    form.email.label.text = gettext("New email")
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
    title = gettext("Check your email")
    return _page("lucia/email_sent.html", title=title, message=_link_sent(address))


def _link_sent(address: str) -> str:
    return gettext("To finish, open the link we sent to %(address)s.", address=address)


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
        if wants_json() or not forms_enabled():
            return _token_page(error_response(error))
        return _token_page(
            _page("lucia/invalid_link.html", 409, error, again=url_for("lucia.change_email"))
        )
    if wants_json() or not forms_enabled():
        return _token_page(jsonify({"email": address}))
    return _token_page(_page("lucia/email_changed.html", email=address))


# -- delete account ---------------------------------------------------------------------


@bp.route("/delete-account", methods=["GET", "POST"], endpoint="delete_account")
@fresh_login_required
def delete_account() -> ResponseReturnValue:
    """Delete the signed-in user's account (fresh session; ``LUCIA_ACCOUNT_DELETION``)."""
    auth = state()
    if not auth.settings.account_deletion:
        if wants_json() or not forms_enabled():
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
    return outcome("account_deleted", messages.ACCOUNT_DELETED)
