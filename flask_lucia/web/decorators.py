"""``login_required``, ``fresh_login_required``, ``mfa_required``, ``verified_required``
and ``factors_required`` (changes to the ways in) for views (sync or async)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue

from flask_lucia.errors import LuciaError
from flask_lucia.types import Session
from flask_lucia.web.base import bearer_token, error_response, state
from flask_lucia.web.proxies import request_state

F = TypeVar("F", bound=Callable[..., Any])


def wants_json() -> bool:
    """True for API-style requests: a JSON body, a bearer token, or JSON preferred over HTML."""
    if request.is_json or bearer_token() is not None:
        return True
    best = request.accept_mimetypes.best_match(("text/html", "application/json"))
    return best == "application/json"


def json_wanted() -> bool:
    """Answer JSON: a JSON body, a client that prefers JSON, or no form views."""
    return wants_json() or not current_app.config["LUCIA_REGISTER_VIEWS"]


def unauthenticated(*, fresh_required: bool = False) -> ResponseReturnValue:
    """Redirect HTML requests to the login view with a same-origin ``next``; else 401 JSON."""
    view = current_app.config.get("LUCIA_LOGIN_VIEW")
    if fresh_required:
        view = current_app.config.get("LUCIA_REAUTHENTICATE_VIEW") or view
    if view and not wants_json():
        next_path = request.full_path if request.query_string else request.path
        return redirect(url_for(view, next=next_path))
    if fresh_required:
        error = LuciaError("AUTH_NOT_AUTHENTICATED", "Confirm that it is you to continue.")
        return error_response(error, fresh_required=True)
    return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))


def unverified() -> ResponseReturnValue:
    """Send HTML requests to the verification page with a same-origin ``next``; else 403
    ``AUTH_EMAIL_NOT_VERIFIED``."""
    if not json_wanted():
        next_path = request.full_path if request.query_string else request.path
        return redirect(url_for("lucia.verify_email", next=next_path))
    return error_response(LuciaError("AUTH_EMAIL_NOT_VERIFIED"))


def _gated() -> bool:
    """With verification "required", an app view (not the blueprint's own pages, where
    the user verifies, changes the address or leaves) waits for a verified email."""
    return bool(request_state.get("_lucia_unverified")) and request.blueprint != "lucia"


#: A requirement of a guarded view: None to let the session through, else the answer.
Check = Callable[[Session], "ResponseReturnValue | None"]


def _guard(view: F, *checks: Check) -> F:
    """``view`` behind a signed-in session and then ``checks`` in order (the first
    refusal answers); OPTIONS (CORS preflight) is exempt; sync or async views."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS":
            session = request_state.get("_lucia_session")
            if session is None:
                return unauthenticated()
            for check in checks:
                refused = check(session)
                if refused is not None:
                    return refused
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def _verified_when_required(_: Session) -> ResponseReturnValue | None:
    return unverified() if _gated() else None


def _fresh(session: Session) -> ResponseReturnValue | None:
    return None if session.fresh else unauthenticated(fresh_required=True)


def _second_factor_proved(session: Session) -> ResponseReturnValue | None:
    return second_factor_needed() if second_factor_missing(session) else None


def _aal2(session: Session) -> ResponseReturnValue | None:
    return second_factor_needed() if session.aal < 2 else None


def _verified(session: Session) -> ResponseReturnValue | None:
    return unverified() if _needs_verification(session.user_id) else None


def login_required(view: F) -> F:
    """Let signed-in requests through; OPTIONS (CORS preflight) is exempt. With
    ``LUCIA_EMAIL_VERIFICATION = "required"`` the email must be verified too."""
    return _guard(view, _verified_when_required)


def fresh_login_required(view: F) -> F:
    """Like ``login_required``, and the session must be fresh (password within FRESH_FOR)."""
    return _guard(view, _verified_when_required, _fresh)


def second_factor_needed() -> ResponseReturnValue:
    """Send HTML requests to the code page with a same-origin ``next`` (a code there makes
    the session count as MFA, and fresh); else 401 ``AUTH_SECOND_FACTOR_REQUIRED``."""
    if not json_wanted():
        next_path = request.full_path if request.query_string else request.path
        return redirect(url_for("lucia.two_factor_verify", next=next_path))
    verify = url_for("lucia.two_factor_verify")
    return error_response(LuciaError("AUTH_SECOND_FACTOR_REQUIRED"), verify=verify)


def second_factor_missing(session: Session) -> bool:
    """Whether the account has a second factor that this session has not proved since it
    was last fresh: what ``factors_required`` and the provider link refuse (DESIGN §18)."""
    return not (session.fresh and session.mfa) and state().has_second_factor(session.user_id)


def factors_required(view: F) -> F:
    """For views that add, remove or change a way into the account (DESIGN §18): a fresh
    session, and one that proved the second factor when the account has one. So a stolen
    session that has gone stale, or one made before the factor was turned on, cannot add
    a way in for its thief. With a second factor, its code is what makes the session
    fresh again; without one, the password (``/auth/confirm``)."""
    return _guard(view, _verified_when_required, _second_factor_proved, _fresh)


def mfa_required(view: F) -> F:
    """Like ``login_required``, and the session must be of assurance level 2
    (``Session.aal == 2``, DESIGN §19: a second factor, a passkey or a trusted browser);
    otherwise the two-factor page (HTML) or 401 ``AUTH_SECOND_FACTOR_REQUIRED`` (JSON)."""
    return _guard(view, _aal2)


def verified_required(view: F) -> F:
    """Like ``login_required``, and the user's email must be verified, whatever
    ``LUCIA_EMAIL_VERIFICATION`` says (a user without an email has nothing to verify)."""
    return _guard(view, _verified)


def _needs_verification(user_id: Any) -> bool:
    """Whether this request's user has an unverified email: as the hook read it with
    verification "required", else one query."""
    flag = request_state.get("_lucia_unverified")
    if flag is not None:
        return bool(flag)
    auth = state()
    if auth.settings.email_verification == "required":
        return False  # the hook's query found it verified
    return auth.needs_verification(user_id)
