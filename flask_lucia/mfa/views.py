"""Two-factor views on the ``lucia`` blueprint (DESIGN §15): TOTP setup and removal,
recovery codes, and ``/two-factor/verify``, which turns a pending sign-in into a session
(or makes the current session count as MFA); and ``flask lucia reset-two-factor``.

Each endpoint answers JSON to JSON clients and a page to browsers, as the sign-in does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click
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
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia.cli import _failures, _find_user, lucia_cli
from flask_lucia.core.cookies import set_cookie
from flask_lucia.core.refusals import RequestError
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.mfa import totp
from flask_lucia.mfa.factor import SecondFactor
from flask_lucia.mfa.forms import CodeForm, TotpSetupForm
from flask_lucia.types import Session
from flask_lucia.web import links
from flask_lucia.web.base import error_response, same_origin, set_retry_after, state
from flask_lucia.web.blueprint import bp
from flask_lucia.web.decorators import factors_required, wants_json
from flask_lucia.web.forms import ActionForm, form_options
from flask_lucia.web.hook import sign_in
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.pages import error_page
from flask_lucia.web.pending import answer_pending, client, pending_cookie, pending_token
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url
from flask_lucia.web.script import session_body


def mfa_state() -> SecondFactor:
    """The current app's ``SecondFactor`` (``app.extensions["lucia_mfa"]``)."""
    found: SecondFactor = current_app.extensions["lucia_mfa"]
    return found


def second_factor_stage(user: Any, next_url: str | None = None) -> BaseResponse | None:
    """The sign-in pipeline's stage (``web.pipeline``): after a first factor, an account
    with a second factor gets a pending sign-in and its answer; None when the first
    factor is enough."""
    user_id = state().users.id_of(user)
    if not mfa_state().enabled(user_id):
        return None
    return answer_pending(user_id, next_url)


def _forms() -> bool:
    return bool(current_app.config["LUCIA_REGISTER_VIEWS"])


def _json_mode() -> bool:
    """Answer JSON: a JSON body, a client that prefers JSON, or no form views."""
    return request.is_json or wants_json() or not _forms()


def _bad_request(message: str) -> Response:
    return error_response(LuciaError("AUTH_INVALID_REQUEST", message), 400)


def _page(
    template: str, *, status: int = 200, error: LuciaError | None = None, **context: Any
) -> Response:
    """A page of ours; an error is flashed (or shown inline without a secret key)."""
    message = None if error is None else error.message
    if message and current_app.secret_key:
        flash(message, "error")
        message = None
    response = current_app.make_response(render_template(template, error=message, **context))
    response.status_code = status
    if error is not None:
        set_retry_after(response, error)
    return response


def _issuer() -> str:
    """The name authenticator apps show: ``LUCIA_TOTP_ISSUER``, the RP name, or the host
    of the app's base URL (never a request's ``Host`` header in production)."""
    settings = mfa_state().settings
    return settings.totp_issuer or settings.rp_name or links.hostname()


def _code(body: object) -> str | Response:
    """The ``code`` of a JSON body, or a 400."""
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code.strip():
        return _bad_request("'code' must be a non-empty string")
    return code


# -- setup, status, recovery codes, turning it off ----------------------------------------


@bp.route("/two-factor", methods=["GET", "POST"], endpoint="two_factor")
@factors_required
def two_factor() -> ResponseReturnValue:
    """Set TOTP up (fresh session): JSON ``POST {}`` for a secret, ``POST {"code",
    "secret"}`` to confirm it; ``GET`` its status (JSON) or the setup page."""
    mfa = mfa_state()
    user, session = request_state._lucia_user, request_state._lucia_session
    if request.method == "POST" and (request.is_json or not _forms()):
        return _setup_json(mfa, user, session)
    if request.method == "GET" and _json_mode():
        left = mfa.recovery_codes_left(session.user_id)
        return jsonify({"enabled": mfa.enabled(session.user_id), "recovery_codes_left": left})
    if mfa.enabled(session.user_id):
        left = mfa.recovery_codes_left(session.user_id)
        action = ActionForm(**form_options())
        return _page("lucia/two_factor.html", enabled=True, codes_left=left, action=action)
    try:
        mfa.require_key()
    except RequestError as error:  # no key to encrypt a secret with: a page that says so
        return error_page(error)
    form = TotpSetupForm(**form_options())
    if form.validate_on_submit():
        try:
            codes = mfa.enable_totp(user, form.secret.data, form.code.data)
        except ValueError as exc:
            return _setup_page(mfa, form, LuciaError("AUTH_INVALID_REQUEST", str(exc)))
        except LuciaError as error:
            return _setup_page(mfa, form, error)
        mfa.mark_session(session.session_id)
        tell_owner(session.user_id, "second_factor_on")
        return _page("lucia/two_factor_codes.html", codes=codes)
    return _setup_page(mfa, form, None)


def _setup_json(mfa: SecondFactor, user: Any, session: Session) -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request("expected a JSON object: {} for a secret, or 'code' and 'secret'")
    if "code" not in body and "secret" not in body:
        if mfa.enabled(session.user_id):
            raise RequestError("Two-factor authentication is on already; turn it off first.", 409)
        secret, uri = mfa.new_totp(mfa.account_name(session.user_id), _issuer())
        return jsonify({"secret": secret, "otpauth_uri": uri})
    code = _code(body)
    if isinstance(code, Response):
        return code
    try:
        codes = mfa.enable_totp(user, body.get("secret"), code)
    except ValueError as exc:
        return _bad_request(str(exc))
    mfa.mark_session(session.session_id)
    tell_owner(session.user_id, "second_factor_on")
    return jsonify({"recovery_codes": codes})


def _setup_page(mfa: SecondFactor, form: TotpSetupForm, error: LuciaError | None) -> Response:
    """The setup page: a QR code of a new secret (the posted one again after a wrong
    code), and the form for the first code."""
    user_id = request_state._lucia_session.user_id
    try:
        secret = totp.check_secret(form.secret.data)
    except ValueError:
        secret = totp.new_secret()
    form.secret.data = secret
    uri = totp.provisioning_uri(secret, mfa.account_name(user_id), _issuer())
    posted = request.method == "POST"
    throttled = error is not None and error.code == "AUTH_TOO_MANY_ATTEMPTS"
    return _page(
        "lucia/two_factor.html",
        status=(429 if throttled else 400) if posted else 200,
        error=error,
        enabled=False,
        form=form,
        secret=secret,
        qr=Markup(totp.qr_svg(uri)),  # segno escapes the URI; the SVG is ours
        otpauth_uri=uri,
    )


@bp.post("/two-factor/recovery-codes", endpoint="two_factor_recovery_codes")
@factors_required
def recovery_codes() -> ResponseReturnValue:
    """Ten new recovery codes in place of the old ones (fresh session), shown this once."""
    if not request.is_json and _forms() and not ActionForm(**form_options()).validate_on_submit():
        return redirect(url_for("lucia.two_factor"), 303)
    codes = mfa_state().new_recovery_codes(request_state._lucia_user)
    if request.is_json or not _forms():
        return jsonify({"recovery_codes": codes})
    return _page("lucia/two_factor_codes.html", codes=codes)


@bp.route("/two-factor", methods=["DELETE"], endpoint="two_factor_disable")
@bp.post("/two-factor/disable", endpoint="two_factor_disable")
@factors_required
def disable() -> ResponseReturnValue:
    """Turn TOTP off (fresh session): ``DELETE /two-factor``, or the page's form."""
    form_post = request.method == "POST" and not request.is_json and _forms()
    if form_post and not ActionForm(**form_options()).validate_on_submit():
        flash(gettext("The form expired; try again."), "error")
        return redirect(url_for("lucia.two_factor"), 303)
    if mfa_state().disable_totp(request_state._lucia_user):
        tell_owner(request_state._lucia_session.user_id, "second_factor_off")
    if form_post:
        flash(gettext("Two-factor authentication is off."), "info")
        return redirect(url_for("lucia.two_factor"), 303)
    return jsonify({"enabled": False})


# -- the second step of a sign-in ---------------------------------------------------------


@bp.route("/two-factor/verify", methods=["GET", "POST"], endpoint="two_factor_verify")
def verify() -> ResponseReturnValue:
    """``{"code"}``, a TOTP or a recovery code: turns this browser's pending sign-in into a
    session (``Session.mfa``), or, signed in, makes the current session count as MFA."""
    if request.method == "POST" and not same_origin(required=False):  # no session cookie yet
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    mfa = mfa_state()
    token = pending_token()
    pending_id = mfa.pending.user(token, client()) if token else None
    session: Session | None = request_state.get("_lucia_session")
    json_mode = request.is_json or not _forms() or (request.method == "GET" and wants_json())
    if pending_id is None and session is None:
        return _expired(json_mode, token is not None)
    user_id = pending_id if pending_id is not None else session.user_id  # type: ignore[union-attr]
    if pending_id is None and not mfa.enabled(user_id):
        if json_mode:
            raise RequestError("Two-factor authentication is off.", 409)
        return redirect(url_for("lucia.two_factor"), 303)
    if json_mode:
        if request.method == "GET":
            return jsonify({"pending": pending_id is not None})
        code = _code(request.get_json(silent=True))
        if isinstance(code, Response):
            return code
        mfa.verify_code(user_id, code)
        return _verified(mfa, token, pending_id, session, None)
    form = CodeForm(**form_options())
    if request.method == "GET":
        form.next.data = safe_next_url(request.args.get("next")) or ""
    if form.validate_on_submit():
        try:
            mfa.verify_code(user_id, form.code.data or "")
        except LuciaError as error:
            status = 429 if error.code == "AUTH_TOO_MANY_ATTEMPTS" else 400
            return _page("lucia/two_factor_verify.html", status=status, error=error, form=form)
        return _verified(mfa, token, pending_id, session, safe_next_url(form.next.data) or "/")
    status = 400 if request.method == "POST" else 200
    return _page("lucia/two_factor_verify.html", status=status, form=form)


def _verified(
    mfa: SecondFactor,
    token: str | None,
    pending_id: Any,
    session: Session | None,
    target: str | None,
) -> ResponseReturnValue:
    """After a right code: the session (``target``: where a form goes next, None: JSON)."""
    if pending_id is not None:
        assert token is not None
        if not mfa.pending.complete(token):  # expired meanwhile, or completed by a racer
            return _expired(target is None, True)
        user = state().get_user(pending_id)
        new = sign_in(user, fresh=True, mfa=True)
        response = jsonify(session_body(user, new)) if target is None else redirect(target, 303)
        set_cookie(response, pending_cookie("", 0))
        return response
    assert session is not None
    mfa.mark_session(session.session_id)
    request_state._lucia_session = replace(session, mfa=True, fresh=True)
    if target is None:
        return jsonify({"mfa": True})
    return redirect(target, 303)


def _expired(json_mode: bool, had_cookie: bool) -> BaseResponse:
    """No pending sign-in (none, expired, or another browser's) and no session."""
    response: BaseResponse
    message = gettext("Your sign-in expired or was not started here; sign in again.")
    if json_mode:
        response = error_response(LuciaError("AUTH_NOT_AUTHENTICATED", message))
    else:
        if current_app.secret_key:
            flash(message, "error")
        response = redirect(url_for(current_app.config["LUCIA_LOGIN_VIEW"] or "lucia.sign_in"), 303)
    if had_cookie:
        set_cookie(response, pending_cookie("", 0))
    return response


# -- support staff -------------------------------------------------------------------------


@lucia_cli.command("reset-two-factor")
@click.argument("user")
def reset_two_factor(user: str) -> None:
    """Remove USER's second factors (TOTP, recovery codes, passkeys) after they lost them."""
    auth = state()
    with _failures():
        found = _find_user(auth, user)
        was_on, passkeys = mfa_state().reset(found)
    totp_done = "turned off TOTP and deleted its recovery codes" if was_on else "TOTP was off"
    click.echo(f"user {auth.users.id_of(found)}: {totp_done}; deleted {passkeys} passkey(s)")
