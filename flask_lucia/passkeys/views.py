"""Passkey views on the ``lucia`` blueprint (DESIGN §15): registration (signed in, fresh),
discoverable sign-in (no username), and the user's list, rename and delete.

The relying party is ``LUCIA_WEBAUTHN_RP_ID`` / ``_RP_NAME`` / ``_ORIGIN``, by default the
app's base URL (LUCIA_BASE_URL). A sign-in's challenge is bound to this browser by a short
HttpOnly cookie holding a nonce (its digest is the challenge's binding).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia import messages
from flask_lucia.core.cookies import extra_cookie, set_cookie
from flask_lucia.core.refusals import RequestError
from flask_lucia.core.tokens import digest, is_well_formed, new_token
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.passkeys.core import (
    CHALLENGE_TTL,
    Passkeys,
    RelyingParty,
    available,
)
from flask_lucia.passkeys.forms import PasskeyNameForm
from flask_lucia.web import links
from flask_lucia.web.base import error_response, same_origin, state
from flask_lucia.web.blueprint import bp, forms_enabled
from flask_lucia.web.decorators import factors_required, login_required, wants_json
from flask_lucia.web.forms import ActionForm, form_options
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.pending import client, pending_cookie, pending_state, pending_token
from flask_lucia.web.pipeline import finish_sign_in
from flask_lucia.web.proxies import request_state
from flask_lucia.web.script import session_body


def passkeys() -> Passkeys:
    """The current app's ``Passkeys``."""
    found: Passkeys = current_app.extensions["lucia_passkeys"]
    return found


def relying_party() -> RelyingParty:
    """The configured relying party, else the app's base URL's host (RP id) and origin
    (``links``: from configuration, the request's host only where it can be trusted)."""
    settings = pending_state().settings
    rp_id = settings.rp_id or links.hostname()
    origins = settings.origins or (links.origin(),)
    return RelyingParty(rp_id, settings.rp_name or rp_id, origins)


@bp.app_context_processor
def _passkeys_available() -> dict[str, Any]:
    """``lucia_passkeys`` in templates: whether the ``mfa`` extra's webauthn is installed."""
    return {"lucia_passkeys": available()}


def _body() -> dict[str, Any]:
    """The request's JSON object, or a 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RequestError("expected a JSON object")
    return body


def _credential(body: dict[str, Any]) -> dict[str, Any]:
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise RequestError("'credential' must be the WebAuthn response as a JSON object")
    return credential


def _challenge_cookie(value: str, max_age: int) -> str:
    auth = state()
    name = pending_state().settings.webauthn_cookie
    return extra_cookie(auth.settings, name, value, max_age, auth.cookie_secure())


# -- registration ---------------------------------------------------------------------------


@bp.post("/passkeys/register/options", endpoint="passkey_register_options")
@factors_required
def register_options() -> ResponseReturnValue:
    """Options for ``navigator.credentials.create()``, bound to this session."""
    session = request_state._lucia_session
    name = pending_state().account_name(session.user_id)
    options = passkeys().registration_options(
        session.user_id, name, session.session_id, relying_party()
    )
    return jsonify(options)


@bp.post("/passkeys/register/verify", endpoint="passkey_register_verify")
@factors_required
def register_verify() -> ResponseReturnValue:
    """``{"credential", "name"?}``: store the new passkey; 201 ``{"passkey": {...}}``."""
    body = _body()
    passkey = passkeys().register(
        request_state._lucia_user,
        request_state._lucia_session.session_id,
        _credential(body),
        body.get("name"),
        relying_party(),
    )
    session = request_state._lucia_session
    tell_owner(session.user_id, "passkey_added", passkey.name)
    # DESIGN §19: the passkey just made is a factor proved in this session: aal 2.
    request_state._lucia_session = state().step_up(session, "passkey")
    return jsonify({"passkey": passkey.to_dict()}), 201


# -- sign-in ----------------------------------------------------------------------------------


@bp.post("/passkeys/sign-in/options", endpoint="passkey_sign_in_options")
def sign_in_options() -> ResponseReturnValue:
    """Options for ``navigator.credentials.get()``, no username; the challenge is bound to
    this browser by a cookie."""
    if not same_origin(required=False):  # no session cookie to trigger the hook's check
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    nonce = request.cookies.get(pending_state().settings.webauthn_cookie)
    if not is_well_formed(nonce):  # several tabs may share one browser's nonce
        nonce = new_token()
    assert nonce is not None
    response = jsonify(passkeys().sign_in_options(digest(nonce), relying_party()))
    set_cookie(response, _challenge_cookie(nonce, CHALLENGE_TTL // 1000))
    return response


@bp.post("/passkeys/sign-in/verify", endpoint="passkey_sign_in_verify")
def sign_in_verify() -> ResponseReturnValue:
    """``{"credential"}``: what a passkey proves here (DESIGN §19). During a pending sign-in
    of its user, that sign-in's second step (amr ``["pwd", "passkey"]``); by the signed-in
    user, re-authentication (the session is fresh and aal 2); else a sign-in of its own
    through the pipeline (user verification: two factors), and a pending sign-in of
    another user in this browser is dropped."""
    if not same_origin(required=False):
        return error_response(LuciaError("AUTH_INVALID_REQUEST"))
    credential = _credential(_body())
    nonce = request.cookies.get(pending_state().settings.webauthn_cookie)
    if not is_well_formed(nonce):
        raise RequestError("No passkey sign-in was started in this browser.")
    assert nonce is not None
    user_id = passkeys().authenticate(credential, digest(nonce), relying_party())
    user = state().get_user(user_id)
    token = pending_token()
    pending = pending_state().find(token, client()) if token else None
    current = request_state.get("_lucia_session")
    response: BaseResponse
    if pending is not None and str(pending.user_id) == str(user_id):
        assert token is not None
        if not pending_state().complete(token):  # expired meanwhile, or a racer took it
            raise RequestError("Your sign-in expired; sign in again.", 401)
        amr = (*pending.amr, "passkey")
        response = finish_sign_in(user, amr, remember=pending.remember)
    elif current is not None and str(current.user_id) == str(user_id):
        session = request_state._lucia_session = state().step_up(current, "passkey")
        response = jsonify({**session_body(user, session), "fresh": True})
    else:
        if token is not None:
            pending_state().cancel(token)
        response = finish_sign_in(user, ("passkey",))
    set_cookie(response, _challenge_cookie("", 0))
    if token is not None:
        set_cookie(response, pending_cookie("", 0))
    return response


# -- the user's passkeys ----------------------------------------------------------------------


@bp.get("/passkeys", endpoint="passkeys")
@login_required
def passkey_list() -> ResponseReturnValue:
    """The user's passkeys: JSON ``{"passkeys": [...]}``, or the page to manage them."""
    listed = passkeys().list(request_state._lucia_session.user_id)
    if wants_json() or not forms_enabled():
        return jsonify({"passkeys": [p.to_dict() for p in listed]})
    options = form_options()
    return render_template(
        "lucia/passkeys.html",
        passkeys=listed,
        rename=PasskeyNameForm(**options),
        action=ActionForm(**options),
        error=None,
    )


@bp.route("/passkeys/<passkey_id>", methods=["PATCH"], endpoint="passkey_rename")
@bp.post("/passkeys/<passkey_id>/rename", endpoint="passkey_rename")
@login_required
def rename(passkey_id: str) -> ResponseReturnValue:
    """``{"name"}`` (or the page's form): a new name for one of the user's passkeys."""
    user_id = request_state._lucia_session.user_id
    if request.is_json or not forms_enabled():
        passkey = passkeys().rename(user_id, passkey_id, _body().get("name"))
        return jsonify({"passkey": passkey.to_dict()})
    form = PasskeyNameForm(**form_options())
    if form.validate_on_submit():
        passkeys().rename(user_id, passkey_id, form.name.data)
        flash(gettext("Passkey renamed."), "success")
    else:
        flash(gettext("Give the passkey a name of at most 100 characters."), "error")
    return redirect(url_for("lucia.passkeys"), 303)


@bp.route("/passkeys/<passkey_id>", methods=["DELETE"], endpoint="passkey_delete")
@bp.post("/passkeys/<passkey_id>/delete", endpoint="passkey_delete")
@factors_required
def delete(passkey_id: str) -> ResponseReturnValue:
    """Delete one of the user's passkeys (fresh session, and the second factor proved when
    the account has one); it signs in no more, and the owner is told."""
    form_post = request.method == "POST" and not request.is_json and forms_enabled()
    if form_post and not ActionForm(**form_options()).validate_on_submit():
        flash(gettext(messages.FORM_EXPIRED), "error")
        return redirect(url_for("lucia.passkeys"), 303)
    passkey = passkeys().delete(request_state._lucia_user, passkey_id)
    tell_owner(request_state._lucia_session.user_id, "passkey_removed", passkey.name)
    if form_post:
        flash(gettext("Deleted the passkey %(name)s.", name=passkey.name), "success")
        return redirect(url_for("lucia.passkeys"), 303)
    return jsonify({"deleted": passkey.id})
