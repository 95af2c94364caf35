"""Two-factor views on the ``lucia`` blueprint (DESIGN §15, §19): TOTP removal, recovery
codes, and ``/two-factor/verify``, the second step of a pending sign-in (or a step-up of
the current session); and ``flask lucia reset-two-factor``. Setting TOTP up, also as the
enrolment of a pending sign-in: ``mfa.setup``.

Each endpoint answers JSON to JSON clients and a page to browsers, as the sign-in does.
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
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia import messages
from flask_lucia.core.cookies import set_cookie
from flask_lucia.core.pending import PendingSignIn
from flask_lucia.core.refusals import RequestError
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.mfa.factor import SecondFactor
from flask_lucia.mfa.forms import CodeForm
from flask_lucia.types import Session
from flask_lucia.web import links
from flask_lucia.web.base import error_response, same_origin, set_retry_after, state
from flask_lucia.web.blueprint import bp, forms_enabled
from flask_lucia.web.decorators import factors_required, wants_json
from flask_lucia.web.forms import ActionForm, form_options
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.pending import client, pending_cookie, pending_token
from flask_lucia.web.pipeline import factors_of, finish_sign_in, trust_this_browser
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url


def mfa_state() -> SecondFactor:
    """The current app's ``SecondFactor`` (``app.extensions["lucia_mfa"]``)."""
    found: SecondFactor = current_app.extensions["lucia_mfa"]
    return found


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


# -- recovery codes, turning it off (setting it up: ``mfa.setup``) ---------------------


@bp.post("/two-factor/recovery-codes", endpoint="two_factor_recovery_codes")
@factors_required
def recovery_codes() -> ResponseReturnValue:
    """Ten new recovery codes in place of the old ones (fresh session), shown this once."""
    if (
        not request.is_json
        and forms_enabled()
        and not ActionForm(**form_options()).validate_on_submit()
    ):
        return redirect(url_for("lucia.two_factor"), 303)
    codes = mfa_state().new_recovery_codes(request_state._lucia_user)
    tell_owner(request_state._lucia_session.user_id, "recovery_codes_new")
    if request.is_json or not forms_enabled():
        return jsonify({"recovery_codes": codes})
    return _page("lucia/two_factor_codes.html", codes=codes)


@bp.route("/two-factor", methods=["DELETE"], endpoint="two_factor_disable")
@bp.post("/two-factor/disable", endpoint="two_factor_disable")
@factors_required
def disable() -> ResponseReturnValue:
    """Turn TOTP off (fresh session): ``DELETE /two-factor``, or the page's form."""
    form_post = request.method == "POST" and not request.is_json and forms_enabled()
    if form_post and not ActionForm(**form_options()).validate_on_submit():
        flash(gettext(messages.FORM_EXPIRED), "error")
        return redirect(url_for("lucia.two_factor"), 303)
    if mfa_state().disable_totp(request_state._lucia_user):
        tell_owner(request_state._lucia_session.user_id, "second_factor_off")
    if form_post:
        flash(gettext("Two-factor authentication is off."), "success")
        return redirect(url_for("lucia.two_factor"), 303)
    return jsonify({"enabled": False})


# -- the second step of a sign-in ---------------------------------------------------------


@bp.route("/two-factor/verify", methods=["GET", "POST"], endpoint="two_factor_verify")
def verify() -> ResponseReturnValue:
    """``{"code", "trust_browser"?, "transport"?}``, a TOTP or a recovery code: the second
    step of this browser's pending sign-in (through the pipeline, ``finish_sign_in``), or,
    signed in, a step-up that makes the current session fresh and aal 2 (DESIGN §19)."""
    if request.method == "POST" and not same_origin(required=False):  # no session cookie yet
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    mfa = mfa_state()
    token = pending_token()
    pending = mfa.pending.find(token, client()) if token else None
    session: Session | None = request_state.get("_lucia_session")
    json_mode = request.is_json or not forms_enabled() or (request.method == "GET" and wants_json())
    if pending is None and session is None:
        return _expired(json_mode, token is not None)
    if pending is not None and pending.setup:  # nothing to give yet: set one up first
        if json_mode:
            error = LuciaError("AUTH_SECOND_FACTOR_SETUP_REQUIRED")
            return error_response(error, setup=url_for("lucia.two_factor"))
        return redirect(url_for("lucia.two_factor"), 303)
    user_id = pending.user_id if pending is not None else session.user_id  # type: ignore[union-attr]
    if pending is None and not mfa.enabled(user_id):
        if json_mode:
            raise RequestError("Two-factor authentication is off.", 409)
        if current_app.secret_key and request.args.get("next"):  # a page that needs it
            flash(messages.SECOND_FACTOR_FIRST, "info")
        return redirect(url_for("lucia.two_factor"), 303)
    if json_mode:
        if request.method == "GET":
            return jsonify({"pending": pending is not None, "methods": factors_of(user_id)})
        body = request.get_json(silent=True)
        code = _code(body)
        if isinstance(code, Response):
            return code
        assert isinstance(body, dict)
        trust, transport = body.get("trust_browser", False), body.get("transport", "cookie")
        if not isinstance(trust, bool) or transport not in ("cookie", "body"):
            return _bad_request("'trust_browser' must be true or false, 'transport' body or cookie")
        method = mfa.verify_method(user_id, code)
        return _verified(token, pending, session, method, trust=trust, transport=transport)
    form = CodeForm(**form_options())
    if request.method == "GET":
        form.next.data = safe_next_url(request.args.get("next")) or ""
    if form.validate_on_submit():
        try:
            method = mfa.verify_method(user_id, form.code.data or "")
        except LuciaError as error:
            status = 429 if error.code == "AUTH_TOO_MANY_ATTEMPTS" else 400
            return _verify_page(user_id, form, status=status, error=error)
        trust = bool(form.trust_browser.data)
        target = safe_next_url(form.next.data) or "/"
        return _verified(token, pending, session, method, trust=trust, target=target)
    return _verify_page(user_id, form, status=400 if request.method == "POST" else 200)


def _verify_page(user_id: Any, form: CodeForm, **options: Any) -> Response:
    """The code page; its passkey button only for an account with a passkey, its "trust
    this browser" box only while ``LUCIA_MFA_TRUST_FOR`` is on."""
    days = mfa_state().settings.trust_for // (24 * 3600 * 1000)
    return _page(
        "lucia/two_factor_verify.html",
        form=form,
        has_passkey="passkey" in factors_of(user_id),
        trust_days=days,
        **options,
    )


def _verified(
    token: str | None,
    pending: PendingSignIn | None,
    session: Session | None,
    method: str,
    *,
    trust: bool,
    target: str | None = None,
    transport: str = "cookie",
) -> ResponseReturnValue:
    """After a right code (``method``: ``otp`` or ``recovery``): the pending sign-in goes on
    through the pipeline, or the signed-in session steps up; the browser is trusted when
    asked. ``target``: where a form goes next (None: JSON)."""
    if pending is not None:
        assert token is not None
        if not mfa_state().pending.complete(token):  # expired meanwhile, or taken by a racer
            return _expired(target is None, True)
        user = state().get_user(pending.user_id)
        amr = (*pending.amr, method)
        response = finish_sign_in(
            user, amr, next_url=target, remember=pending.remember, transport=transport
        )
        if trust and response.status_code < 400:
            trust_this_browser(pending.user_id)
        set_cookie(response, pending_cookie("", 0))
        return response
    assert session is not None
    request_state._lucia_session = state().step_up(session, method)
    trusted = trust and trust_this_browser(session.user_id)
    if target is None:
        return jsonify({"mfa": True, "aal": 2, "trusted": trusted})
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
