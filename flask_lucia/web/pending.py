"""Pending sign-ins on the request (DESIGN §15): a correct first factor for an account with
a second factor gets a short-lived HttpOnly cookie instead of a session (``core.pending``
holds them; the second factor's stage of ``web.pipeline`` makes them).

The pending sign-in is bound to its user (server-side) and to its browser (the cookie,
and the user agent it was made with); it is no session, so ``current_user`` stays
anonymous until ``/auth/two-factor/verify`` turns it into one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia.core.cookies import extra_cookie, set_cookie
from flask_lucia.core.pending import Pending, client_digest
from flask_lucia.errors import LuciaError
from flask_lucia.web.base import error_response, state
from flask_lucia.web.decorators import json_wanted


def pending_state() -> Pending:
    """The current app's ``Pending`` (``app.extensions["lucia_pending"]``)."""
    found: Pending = current_app.extensions["lucia_pending"]
    return found


def client() -> str:
    """This request's browser, as pending sign-ins remember it."""
    return client_digest(request.user_agent.string)


def answer_pending(
    user_id: Any,
    next_url: str | None = None,
    amr: Iterable[str] = ("pwd",),
    *,
    remember: bool = True,
    setup: bool = False,
) -> BaseResponse:
    """A pending sign-in for ``user_id`` (``amr``: what it proved so far) and its answer,
    with its cookie and no token: JSON 401 ``AUTH_SECOND_FACTOR_REQUIRED`` (or, with
    ``setup``, ``AUTH_SECOND_FACTOR_SETUP_REQUIRED``), or a redirect to the page that
    asks for the code (or walks through setting a factor up)."""
    token, max_age = pending_state().begin(user_id, client(), amr, remember=remember, setup=setup)
    endpoint = "lucia.two_factor" if setup else "lucia.two_factor_verify"
    page = url_for(endpoint)
    response: BaseResponse
    if json_wanted():
        if setup:
            error = LuciaError("AUTH_SECOND_FACTOR_SETUP_REQUIRED")
            response = error_response(error, setup=page)
        else:
            response = error_response(LuciaError("AUTH_SECOND_FACTOR_REQUIRED"), verify=page)
    else:
        target = url_for(endpoint, next=next_url) if next_url else page
        response = redirect(target, 303)
    set_cookie(response, pending_cookie(token, max_age))
    return response


def pending_token() -> str | None:
    """The pending sign-in cookie of this request, if any."""
    return request.cookies.get(pending_state().settings.pending_cookie)


def pending_cookie(token: str, max_age: int) -> str:
    """``Set-Cookie`` of a pending sign-in (``""`` and 0: delete it)."""
    auth = state()
    name = pending_state().settings.pending_cookie
    return extra_cookie(auth.settings, name, token, max_age, auth.cookie_secure())
