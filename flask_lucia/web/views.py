"""The core views on the ``lucia`` blueprint: session status, refresh, sign-out, devices and
sessions, and re-authentication (``/confirm``). Sign-in and sign-up: ``web.credentials``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from flask_lucia import messages
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.types import Session
from flask_lucia.web.agents import device_name
from flask_lucia.web.base import (
    error_response,
    same_origin,
    state,
)
from flask_lucia.web.blueprint import (
    _FORM_TYPES,
    _bad_request,
    _form_page,
    bp,
    forms_enabled,
    home_url,
)
from flask_lucia.web.credentials import confirm_password, requested_transport
from flask_lucia.web.decorators import login_required
from flask_lucia.web.forms import (
    confirm_form,
)
from flask_lucia.web.hook import adopt_rotation, sign_out
from flask_lucia.web.pages import refused
from flask_lucia.web.pipeline import pipeline, token_body
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url
from flask_lucia.web.script import session_body


@bp.get("/session")
def session_status() -> ResponseReturnValue:
    """The current session for the browser module, or 401."""
    user, session = request_state.get("_lucia_user"), request_state.get("_lucia_session")
    if user is None or session is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    return jsonify(session_body(user, session))


@bp.post("/refresh")
def refresh() -> ResponseReturnValue:
    """Rotate the tokens from the refresh cookie (once per request, even after the hook),
    or with ``"transport": "body"`` the refresh token of the JSON body."""
    transport = requested_transport()
    if isinstance(transport, Response):
        return transport
    if transport == "body":
        return _refresh_from_body()
    auth = state()
    found = request_state.get("_lucia_refreshed")
    if found is None:
        token = request.cookies.get(auth.settings.refresh_cookie, "")
        try:
            found = auth.refresh(token)
        except LuciaError as error:
            if error.code != "AUTH_INVALID_REFRESH_TOKEN":
                raise
            request_state.pop("_lucia_user", None)
            request_state.pop("_lucia_session", None)
            request_state._lucia_cookies = auth.clearing_cookies()
            return error_response(error)
        adopt_rotation(found)
    body = {"expires": found.session.expires_ms, "checksum": found.session.checksum}
    return jsonify(body)


def _refresh_from_body() -> ResponseReturnValue:
    """Rotate ``{"refresh_token": ...}`` by the cookie rules (grace, reuse revokes the
    session); the new pair goes in the body, and no cookie is set or cleared."""
    body = request.get_json(silent=True)
    token = body.get("refresh_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        return _bad_request("'refresh_token' must be a non-empty string")
    try:
        found = state().refresh(token)
    except LuciaError as error:
        if error.code != "AUTH_INVALID_REFRESH_TOKEN":
            raise
        return error_response(error)
    assert found.tokens is not None
    session = found.session
    payload = {"expires": session.expires_ms, "checksum": session.checksum}
    return jsonify({**payload, **token_body(session, found.tokens)})


@bp.post("/sign-out", endpoint="sign_out")
def sign_out_endpoint() -> ResponseReturnValue:
    """End this session, or with ``{"everywhere": true}`` (a form's ``everywhere``) every
    session of the user and every browser it trusted (DESIGN §19); answer where to go
    next (a same-origin path, or null)."""
    if not same_origin(required=False):
        return refused()
    body = request.get_json(silent=True) if request.is_json else request.form
    body = body if isinstance(body, Mapping) else {}
    target = safe_next_url(body.get("redirect"))
    everywhere = body.get("everywhere", False)
    if everywhere not in (True, False, "1", "true"):
        return _bad_request("'everywhere' must be true or false")
    session = request_state.get("_lucia_session")
    if everywhere in (True, "1", "true") and session is not None:
        state().invalidate_all_user_sessions(session.user_id)
    sign_out()
    if not request.is_json and (request.form or request.mimetype in _FORM_TYPES):
        return redirect(target or _signed_out_page(), 303)
    return jsonify({"redirect": target})


def _signed_out_page() -> str:
    """Where a sign-out form goes without a ``redirect``: ``LUCIA_SIGN_OUT_REDIRECT``, else
    the sign-in page (an app need not have a ``/``), else the app's home."""
    configured = state().settings.sign_out_redirect
    if configured is not None:
        return configured
    return url_for("lucia.sign_in") if forms_enabled() else home_url()


def _device(session: Session, current: Session | None) -> dict[str, Any]:
    """A session as the device list shows it: times in unix ms, the current one marked."""

    def ms(moment: datetime | None) -> int | None:
        return None if moment is None else int(moment.timestamp() * 1000)

    return {
        "id": session.session_id,
        "created_at": ms(session.created_at),
        "last_used_at": ms(session.last_used_at),
        "expires": session.expires_ms,
        "idle_expires": ms(session.idle_expires),
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
        "amr": list(session.amr),
        "aal": session.aal,
        "current": current is not None and session.session_id == current.session_id,
    }


@bp.get("/sessions")
def sessions() -> ResponseReturnValue:
    """The signed-in user's sessions (devices), newest first; the current one marked."""
    user, current = request_state.get("_lucia_user"), request_state.get("_lucia_session")
    if user is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    listed = state().get_user_sessions(current.user_id)
    return jsonify({"sessions": [_device(s, current) for s in listed]})


@bp.post("/sessions/<session_id>/revoke", endpoint="revoke")
def revoke(session_id: str) -> ResponseReturnValue:
    """End one of the user's sessions; other devices are untouched. Revoking this one signs out."""
    user, current = request_state.get("_lucia_user"), request_state.get("_lucia_session")
    if user is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    removed = len(session_id) <= 64 and state().storage.delete_user_sessions(
        current.user_id, session_id=session_id
    )
    if not removed:
        return error_response(LuciaError("AUTH_INVALID_REQUEST", "No such session."), 404)
    was_current = current is not None and current.session_id == session_id
    if was_current:
        sign_out()
    if not request.is_json and forms_enabled():
        return redirect(url_for("lucia.sign_in") if was_current else url_for("lucia.devices"), 303)
    return jsonify({"revoked": session_id, "current": was_current})


#: A part of the devices page below the device list, added by a feature (the activity
#: feature's "Recent activity"): ``fn(current session) -> HTML``.
DevicesSection = Callable[[Session], str]


def devices_sections(app: Flask) -> list[DevicesSection]:
    """The parts features added to ``app``'s devices page, in order."""
    found: list[DevicesSection] = app.extensions.setdefault("lucia_devices_sections", [])
    return found


@bp.get("/devices", endpoint="devices")
@login_required
def devices_page() -> ResponseReturnValue:
    """The HTML device list with a revoke button per session."""
    if not forms_enabled():
        raise NotFound()
    current = request_state.get("_lucia_session")
    listed = state().get_user_sessions(current.user_id)
    return render_template(
        "lucia/devices.html",
        sessions=listed,
        current=current,
        sections=[section(current) for section in devices_sections(current_app)],
        home=home_url(),
        way_in=lambda amr: messages.way_in(amr, pipeline().method_names),
        device_name=device_name,
        ago=messages.ago,
        exact_time=messages.exact_time,
    )


@bp.get("/done", endpoint="done")
def done() -> ResponseReturnValue:
    """The outcome of a form that ended on the app's side (password changed or reset,
    account deleted): its flashed sentence under a heading, and the way on. Without a
    message to show (a reload), the app's home page."""
    title = messages.OUTCOME_TITLES.get(request.args.get("what", ""))
    if title is None or not forms_enabled():
        raise NotFound()
    if not get_flashed_messages():
        return redirect(home_url(), 303)
    return render_template("lucia/done.html", title=gettext(title))


@bp.route("/confirm", methods=["GET", "POST"], endpoint="reauthenticate")
@login_required
def reauthenticate() -> ResponseReturnValue:
    """Re-authenticate to make this session fresh (for ``fresh_login_required`` views) by
    any factor (DESIGN §19): JSON ``{"password"}`` or ``{"code"}`` (TOTP or recovery code:
    also aal 2); the page takes the password, a passkey or a linked provider."""
    session: Session = request_state.get("_lucia_session")
    if request.method == "POST" and (request.is_json or not forms_enabled()):
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        password, code = body.get("password"), body.get("code")
        check = pipeline().verify_code
        try:
            if isinstance(code, str) and code.strip() and password is None and check is not None:
                session = state().step_up(session, check(session.user_id, code))
            elif isinstance(password, str) and password and code is None:
                session = confirm_password(session, password)
            else:
                return _bad_request("send 'password', or 'code': a non-empty string")
        except LuciaError as error:
            return error_response(messages.for_user(error, "confirm"))
        request_state._lucia_session = session
        return jsonify({"fresh": True, "expires": session.expires_ms, "aal": session.aal})
    form = confirm_form()
    if form.validate_on_submit():
        try:
            confirm_password(session, form.password.data or "")
        except LuciaError as error:
            return _form_page("lucia/confirm.html", form, error)
        return redirect(safe_next_url(form.next.data) or home_url(), 303)
    return _form_page("lucia/confirm.html", form)
