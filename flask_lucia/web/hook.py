"""The request hook: cookie or bearer token -> ``current_user``, refresh, and cookies out.

Per request state lives in ``request_state`` (``proxies``), a namespace of the request
itself: ``_lucia_user``, ``_lucia_session``, and ``_lucia_cookies`` (``Set-Cookie`` values
the response must carry).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Response, current_app, g, request
from flask.typing import ResponseReturnValue

from flask_lucia import signals
from flask_lucia.core.auth import Auth
from flask_lucia.core.base import Found
from flask_lucia.core.cookies import set_cookie
from flask_lucia.core.csrf import SAFE_METHODS
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, Tokens
from flask_lucia.web.base import (
    bearer_token,
    error_response,
    presented_device,
    same_origin,
    state,
)
from flask_lucia.web.notices import know_device
from flask_lucia.web.pages import refused
from flask_lucia.web.proxies import local, request_state


def before_request() -> ResponseReturnValue | None:
    """Validate the request's token; rotate from the refresh cookie; 503 if the DB is down."""
    auth = state()
    bearer = bearer_token()
    if bearer is not None:
        try:
            _adopt(auth.find(bearer))
        except LuciaError as error:
            return error_response(error)
        return None
    s = auth.settings
    access = request.cookies.get(s.access_cookie)
    refresh = request.cookies.get(s.refresh_cookie)
    if not access and not refresh:
        return None  # no cookies, no database work
    if request.method not in SAFE_METHODS and not same_origin():
        return refused()
    try:
        found = auth.find(access) if access else None
        if found is None and refresh:
            found = _refresh_quietly(auth, refresh)
    except LuciaError as error:  # the database failed: not a sign-out, keep the cookies
        return error_response(error)
    if found is None:
        request_state._lucia_cookies = auth.clearing_cookies()
    _adopt(found)
    return None


def _refresh_quietly(auth: Auth, refresh_token: str) -> Found | None:
    """Rotate, or None when the refresh token is no good (database errors propagate)."""
    try:
        found = auth.refresh(refresh_token)
    except LuciaError as error:
        if error.code == "AUTH_INVALID_REFRESH_TOKEN":
            return None
        raise
    adopt_rotation(found)
    return found


def adopt_rotation(found: Found) -> None:
    """Make a just-rotated session this request's: its user, and its new cookies."""
    assert found.tokens is not None
    here = local()
    here._lucia_cookies = found.tokens.cookies
    here._lucia_refreshed = found
    _adopt(found)
    _note_verification(found.session.user_id)


def _adopt(found: Found | None) -> None:
    if found is not None:
        here = local()
        here._lucia_user = found.user
        here._lucia_session = found.session
        if found.unverified:  # read only while LUCIA_EMAIL_VERIFICATION is "required"
            here._lucia_unverified = True


def _note_verification(user_id: Any) -> None:
    """With verification "required", whether this request's user must still verify its
    email (``_lucia_unverified``), for a session the access-token query did not load."""
    auth = state()
    if auth.settings.email_verification == "required":
        request_state._lucia_unverified = auth.needs_verification(user_id)


def after_request(response: Response) -> Response:
    """Write the cookies this request decided on (``private, no-store``); auth-dependent
    answers vary on Cookie."""
    here = local()
    cookies = here.pop("_lucia_cookies", None)
    device = here.pop("_lucia_device_cookie", None)
    if device is not None:
        cookies = (*(cookies or ()), device)
    if cookies:
        set_cookie(response, *cookies)
    if cookies or "_lucia_session" in here:
        if "Vary" in response.headers:
            response.vary.add("Cookie")
        else:  # the common case, without parsing a header set
            response.headers["Vary"] = "Cookie"
    return response


def remember_device(provider: str, identifier: str) -> None:
    """After a password proved ``provider:identifier`` in this browser: give it a device
    cookie for that provider id (its own throttle budget), unless it has a valid one."""
    auth = state()
    provider_id = auth.provider_id(provider, identifier)
    if auth.device_nonce(provider_id, presented_device()) is None:
        cookie = auth.device_cookie(provider_id)
        if cookie is not None:
            request_state._lucia_device_cookie = cookie


def sign_in(
    user_or_id: Any,
    *,
    fresh: bool = True,
    remember: bool = True,
    mfa: bool = False,
    new_account: bool = False,
    amr: Iterable[str] = (),
) -> Session:
    """Start a new session for this request's client (ending any it had: no fixation).

    ``remember=False``: its cookies, now and at every rotation, are browser-session cookies;
    ``mfa``: the user proved a second factor (DESIGN §15); ``amr``: how (DESIGN §19;
    ``web.pipeline.finish_sign_in`` is where the ways in call this). A browser that never signed in
    to the account gets a device cookie, and the owner a mail about it, unless
    ``new_account`` (the account was made in this request).
    """
    auth = state()
    user = user_or_id if auth.users.is_user(user_or_id) else auth.get_user(user_or_id)
    previous = request_state.get("_lucia_session")
    if previous is not None:
        auth.invalidate_user_session(previous.user_id, previous.session_id)
    session, tokens = issue_session(user, fresh=fresh, remember=remember, mfa=mfa, amr=amr)
    request_state._lucia_user, request_state._lucia_session, request_state._lucia_cookies = (
        user,
        session,
        tokens.cookies,
    )
    request_state.pop("_lucia_unverified", None)
    _note_verification(session.user_id)
    _rotate_csrf_token()
    know_device(user, new_account=new_account)
    return session


def issue_session(
    user: Any, *, fresh: bool, remember: bool = True, mfa: bool = False, amr: Iterable[str] = ()
) -> tuple[Session, Tokens]:
    """A new session for ``user`` recorded with this request's user agent and address, and
    its tokens; this request's own session and cookies are left alone (API clients)."""
    auth = state()
    session, tokens = auth.create_session(
        auth.users.id_of(user),
        fresh=fresh,
        user_agent=request.user_agent.string or None,
        ip_address=request.remote_addr,
        remember=remember,
        mfa=mfa,
        amr=tuple(amr),
    )
    signals.send(signals.user_signed_in, user=user, session=session)
    return session, tokens


def sign_out() -> None:
    """End this request's session server-side and clear its cookies (idempotent)."""
    auth = state()
    session, user = (
        request_state.pop("_lucia_session", None),
        request_state.pop("_lucia_user", None),
    )
    request_state.pop("_lucia_unverified", None)
    if session is not None:
        auth.invalidate_user_session(session.user_id, session.session_id)
        signals.send(signals.user_signed_out, user=user, session=session)
    request_state._lucia_cookies = auth.clearing_cookies()


def _rotate_csrf_token() -> None:
    """Drop Flask-WTF's CSRF token so the signed-in page gets a new one."""
    from flask import session as flask_session

    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if field in flask_session:
        flask_session.pop(field)
    g.pop(field, None)


def parse_request() -> tuple[str, str]:
    """``(access_token, refresh_token)`` from the request, ``""`` when absent; CSRF-checked."""
    s = state().settings
    bearer = bearer_token()
    if bearer is not None:
        return bearer, ""
    access = request.cookies.get(s.access_cookie, "")
    refresh = request.cookies.get(s.refresh_cookie, "")
    if (access or refresh) and request.method not in SAFE_METHODS and not same_origin():
        raise LuciaError("AUTH_INVALID_REQUEST")
    return access, refresh


def validate_request() -> Session:
    """This request's session, as the hook validated (and maybe refreshed) it."""
    session: Session | None = request_state.get("_lucia_session")
    if session is None:
        parse_request()  # raises AUTH_INVALID_REQUEST on a cross-site request
        raise LuciaError("AUTH_INVALID_ACCESS_TOKEN")
    return session
