"""Pending sign-ins on the request (DESIGN §15): a correct password for an account with a
second factor gets a short-lived HttpOnly cookie instead of a session.

The pending sign-in is bound to its user (server-side) and to its browser (the cookie,
and the user agent it was made with); it is no session, so ``current_user`` stays
anonymous until ``/auth/two-factor/verify`` turns it into one.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia.core.cookies import extra_cookie, set_cookie
from flask_lucia.errors import LuciaError
from flask_lucia.mfa.factor import SecondFactor, client_digest
from flask_lucia.web.decorators import wants_json
from flask_lucia.web.hook import error_response, state


def mfa_state() -> SecondFactor:
    """The current app's ``SecondFactor`` (``app.extensions["lucia_mfa"]``)."""
    found: SecondFactor = current_app.extensions["lucia_mfa"]
    return found


def client() -> str:
    """This request's browser, as pending sign-ins remember it."""
    return client_digest(request.user_agent.string)


def second_factor_required(user: Any, next_url: str | None = None) -> BaseResponse | None:
    """After a correct password: for an account with a second factor, a pending sign-in
    and its answer (JSON 401 ``AUTH_SECOND_FACTOR_REQUIRED``, or a redirect to the verify
    page); None when the password is enough (no second factor)."""
    mfa = mfa_state()
    user_id = state().users.id_of(user)
    if not mfa.enabled(user_id):
        return None
    token, max_age = mfa.begin_pending(user_id, client())
    verify = url_for("lucia.two_factor_verify")
    response: BaseResponse
    if request.is_json or wants_json() or not current_app.config["LUCIA_REGISTER_VIEWS"]:
        response = error_response(LuciaError("AUTH_SECOND_FACTOR_REQUIRED"), verify=verify)
    else:
        target = url_for("lucia.two_factor_verify", next=next_url) if next_url else verify
        response = redirect(target, 303)
    set_cookie(response, pending_cookie(token, max_age))
    return response


def pending_token() -> str | None:
    """The pending sign-in cookie of this request, if any."""
    return request.cookies.get(mfa_state().settings.pending_cookie)


def pending_cookie(token: str, max_age: int) -> str:
    """``Set-Cookie`` of a pending sign-in (``""`` and 0: delete it)."""
    auth = state()
    name = mfa_state().settings.pending_cookie
    return extra_cookie(auth.settings, name, token, max_age, auth.cookie_secure())
