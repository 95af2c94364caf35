"""The email flows' pages and their JSON twins (DESIGN §13), on the ``lucia`` blueprint: the
helpers they share, and verifying the address. Resetting a password: ``reset_views``;
changing the password or the address, deleting the account: ``account_views``.

Each path answers a Flask-WTF form (HTML) or JSON (a JSON body, a JSON ``Accept``, or
every request while ``LUCIA_REGISTER_VIEWS`` is off). Pages that carry a token in their
URL send ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
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

from flask_lucia import messages
from flask_lucia.email.flows import Emails
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.web.base import error_response, set_retry_after
from flask_lucia.web.blueprint import bp, forms_enabled
from flask_lucia.web.decorators import (
    login_required,
    wants_json,
)
from flask_lucia.web.forms import (
    ButtonForm,
    form_options,
)
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url

#: What a form that failed its CSRF check says (the page and its token expired).
FORM_EXPIRED = messages.FORM_EXPIRED


def _emails() -> Emails:
    found: Emails = current_app.extensions["lucia_email"]
    return found


def _json_post() -> bool:
    """A POST answered in JSON: a JSON body, or any POST while the form views are off."""
    return request.method == "POST" and (request.is_json or not forms_enabled())


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


def _mail_json(send: Callable[[str], dict[str, Any]]) -> Response:
    """A JSON request that mails the address of its ``{"email"}``: ``send(email)``'s answer;
    400 for anything but one address, 429 over a mail limit, 503 when it was not sent."""
    body = _json_body("email")
    if isinstance(body, Response):
        return body
    try:
        return jsonify(send(body["email"]))
    except ValueError as error:
        return _bad_request(str(error))
    except LuciaError as error:
        return error_response(error)
    except MailError:
        return _not_sent()


def _not_sent() -> Response:
    """JSON for a mail that could not be sent: 503, and the user's words."""
    return error_response(LuciaError("UNKNOWN_ERROR", NOT_SENT), 503)


def _page(
    template: str, status: int = 200, error: LuciaError | str | None = None, **context: Any
) -> Response:
    """Render one of the flows' pages; an error is flashed (429 adds ``Retry-After``)."""
    if not forms_enabled():
        raise NotFound()
    message = error.message if isinstance(error, LuciaError) else error and gettext(error)
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
    if wants_json() or not forms_enabled():
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
        if wants_json() or not forms_enabled():
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
        flash(gettext("A new link is on its way to %(address)s.", address=sent), "info")
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
    if wants_json() or not forms_enabled():
        return _token_page(jsonify({"verified": True, "email": address}))
    request_state.pop(
        "_lucia_unverified", None
    )  # this request's user, if it is theirs, is verified now
    return _token_page(_page("lucia/email_verified.html", email=address))
