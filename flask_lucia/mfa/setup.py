"""Setting TOTP up (DESIGN §15, §19): ``GET/POST /auth/two-factor`` on a fresh session that
proved its factors, or, without a session, as the enrolment of a pending sign-in that
``LUCIA_MFA_REQUIRED`` held back (``AUTH_SECOND_FACTOR_SETUP_REQUIRED``): the first right
code turns TOTP on and the pending sign-in into an aal-2 session.

JSON: ``POST {}`` for a secret, ``POST {"code", "secret"}`` to confirm it (ten recovery
codes, shown once); ``GET`` the status. Browsers: the setup page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from flask_lucia.core.cookies import set_cookie
from flask_lucia.core.pending import PendingSignIn
from flask_lucia.core.refusals import RequestError
from flask_lucia.errors import LuciaError
from flask_lucia.mfa import totp
from flask_lucia.mfa.forms import TotpSetupForm
from flask_lucia.mfa.views import (
    _bad_request,
    _code,
    _expired,
    _issuer,
    _page,
    mfa_state,
)
from flask_lucia.types import Session
from flask_lucia.web.base import error_response, same_origin, state
from flask_lucia.web.blueprint import bp, forms_enabled
from flask_lucia.web.decorators import factors_required, json_wanted
from flask_lucia.web.forms import ActionForm, form_options
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.pages import error_page
from flask_lucia.web.pending import client, pending_cookie, pending_token
from flask_lucia.web.pipeline import finish_sign_in
from flask_lucia.web.proxies import request_state

ALREADY_ON = "Two-factor authentication is on already; turn it off first."
#: What happens once a first code turned TOTP on: given the recovery codes, the answer.
Done = Callable[[list[str]], ResponseReturnValue]


@bp.route("/two-factor", methods=["GET", "POST"], endpoint="two_factor")
def two_factor() -> ResponseReturnValue:
    """Set TOTP up: on a signed-in session (``factors_required``), or with the pending
    cookie of a sign-in held for enrolment."""
    if request_state.get("_lucia_session") is None:
        token = pending_token()
        pending = mfa_state().pending.find(token, client()) if token else None
        if token is not None and pending is not None and pending.setup:
            if request.method == "POST" and not same_origin(required=False):
                return error_response(LuciaError("AUTH_INVALID_REQUEST"))
            user = state().get_user(pending.user_id)
            return _setup(user, pending.user_id, lambda codes: _enrolled(token, pending, codes))
    return _manage()


@factors_required
def _manage() -> ResponseReturnValue:
    """The signed-in user's TOTP: its status, or setting it up."""
    mfa = mfa_state()
    user, session = request_state._lucia_user, request_state._lucia_session
    if request.method == "GET" and json_wanted():
        left = mfa.recovery_codes_left(session.user_id)
        return jsonify({"enabled": mfa.enabled(session.user_id), "recovery_codes_left": left})
    json_post = request.method == "POST" and (request.is_json or not forms_enabled())
    if not json_post and mfa.enabled(session.user_id):
        left = mfa.recovery_codes_left(session.user_id)
        action = ActionForm(**form_options())
        return _page("lucia/two_factor.html", enabled=True, codes_left=left, action=action)
    return _setup(user, session.user_id, lambda codes: _turned_on(session, codes))


def _setup(user: Any, user_id: Any, done: Done) -> ResponseReturnValue:
    """A new secret, or a first code that confirms one; then ``done``."""
    mfa = mfa_state()
    if request.method == "POST" and (request.is_json or not forms_enabled()):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad_request("expected a JSON object: {} for a secret, or 'code' and 'secret'")
        if "code" not in body and "secret" not in body:
            if mfa.enabled(user_id):
                raise RequestError(
                    "Two-factor authentication is on already; turn it off first.", 409
                )
            secret, uri = mfa.new_totp(mfa.account_name(user_id), _issuer())
            return jsonify({"secret": secret, "otpauth_uri": uri})
        code = _code(body)
        if isinstance(code, Response):
            return code
        try:
            return done(mfa.enable_totp(user, body.get("secret"), code))
        except ValueError as exc:
            return _bad_request(str(exc))
    try:
        mfa.require_key()
    except RequestError as error:  # no key to encrypt a secret with: a page that says so
        return error_page(error)
    form = TotpSetupForm(**form_options())
    if form.validate_on_submit():
        try:
            codes = mfa.enable_totp(user, form.secret.data, form.code.data)
        except ValueError as exc:
            return _setup_page(user_id, form, LuciaError("AUTH_INVALID_REQUEST", str(exc)))
        except LuciaError as error:
            return _setup_page(user_id, form, error)
        return done(codes)
    return _setup_page(user_id, form, None)


def _turned_on(session: Session, codes: list[str]) -> ResponseReturnValue:
    """TOTP is on: this session proved it (aal 2, DESIGN §19); the owner is told."""
    request_state._lucia_session = state().step_up(session, "otp")
    tell_owner(session.user_id, "second_factor_on")
    if request.is_json or not forms_enabled():
        return jsonify({"recovery_codes": codes})
    return _page("lucia/two_factor_codes.html", codes=codes)


def _enrolled(token: str, pending: PendingSignIn, codes: list[str]) -> ResponseReturnValue:
    """TOTP is on for a pending sign-in held for enrolment: it goes on through the pipeline
    with ``"otp"`` proved, and the answer carries the recovery codes."""
    json_mode = request.is_json or not forms_enabled()
    if not mfa_state().pending.complete(token):  # expired meanwhile, or taken by a racer
        return _expired(json_mode, True)
    tell_owner(pending.user_id, "second_factor_on")
    user = state().get_user(pending.user_id)
    answer = finish_sign_in(user, (*pending.amr, "otp"), remember=pending.remember)
    response: Response
    if json_mode and answer.status_code == 200:
        response = jsonify({**(answer.get_json() or {}), "recovery_codes": codes})
    elif answer.status_code < 400:  # signed in: the codes, shown this once
        response = _page("lucia/two_factor_codes.html", codes=codes)
    else:  # refused by a stage
        response = answer  # type: ignore[assignment]
    set_cookie(response, pending_cookie("", 0))
    return response


def _setup_page(user_id: Any, form: TotpSetupForm, error: LuciaError | None) -> Response:
    """The setup page: a QR code of a new secret (the posted one again after a wrong
    code), and the form for the first code."""
    mfa = mfa_state()
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
        enrolling=request_state.get("_lucia_session") is None,
        form=form,
        secret=secret,
        qr=Markup(totp.qr_svg(uri)),  # segno escapes the URI; the SVG is ours
        otpauth_uri=uri,
    )
