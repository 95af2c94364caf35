"""The sign-in pipeline (DESIGN §19): the one place where every way in ends.

Passwords, providers, passkeys, reset links and email codes prove a first factor (or
two), then call ``finish_sign_in``, which runs the stages in order and either answers
with a pending sign-in (the user must give or set up a second factor: no session, no
token) or makes the session and answers with it:

1. ``allowed``: the app's ``LUCIA_ALLOW_SIGN_IN(user)`` (a disabled or banned user);
2. ``second_factor``: the account has a second factor the way in did not give (a
   trusted browser gives it: ``"device"``);
3. ``enrolment``: ``LUCIA_MFA_REQUIRED`` asks for a second factor the user lacks.

Address verification (``LUCIA_EMAIL_VERIFICATION = "required"``) is a gate on the session
made here (``login_required`` sends the user to verify), since the verification page needs
the session. Features register what they add (their factors, their code check, their
method names) at ``init_app``; they meet here, not by importing each other. One
``Pipeline`` lives in ``app.extensions["lucia_pipeline"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia.core import assurance
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, Tokens
from flask_lucia.web.base import error_response, presented_device, state
from flask_lucia.web.decorators import json_wanted
from flask_lucia.web.hook import issue_session, remember_device, sign_in
from flask_lucia.web.pages import error_page
from flask_lucia.web.pending import answer_pending, pending_state
from flask_lucia.web.proxies import request_state
from flask_lucia.web.script import session_body


@dataclass
class SignIn:
    """A sign-in on its way through the stages: who, how (``amr``, which a stage may add
    to), and what the caller asked for."""

    user: Any
    user_id: Any
    amr: tuple[str, ...]
    next_url: str | None = None
    remember: bool = True
    transport: str = "cookie"
    new_account: bool = False
    #: The key (``(provider, identifier)``) a password or email code proved: a browser
    #: that gets a whole session gets a device cookie for it (its own throttle budget).
    key: tuple[str, str] | None = None


#: A stage: an answer that replaces the session (a pending sign-in, a refusal), or None.
Stage = Callable[[SignIn], "BaseResponse | None"]
#: After a sign-up: ``(user_id, client_address)``.
SignedUp = Callable[[Any, "str | None"], object]


@dataclass
class Pipeline:
    """What the features of one app registered: stages run after the core's, sign-up
    hooks, the second factors each user has, the code check, and method names."""

    stages: list[tuple[str, Stage]] = field(default_factory=list)
    signed_up: list[SignedUp] = field(default_factory=list)
    #: The second-factor methods a user has (``"otp"``, ``"recovery"``, ``"passkey"``).
    factors: list[Callable[[Any], Iterable[str]]] = field(default_factory=list)
    #: Check a TOTP or recovery code of a user: the method it proved; ``AUTH_INVALID_CODE``.
    verify_code: Callable[[Any, str], str] | None = None
    #: Names of methods for people (``"oauth:github"`` -> ``"GitHub"``).
    method_names: dict[str, str] = field(default_factory=dict)


def pipeline() -> Pipeline:
    """The current app's ``Pipeline``."""
    found: Pipeline = current_app.extensions["lucia_pipeline"]
    return found


def finish_sign_in(
    user: Any,
    amr: Iterable[str] = ("pwd",),
    *,
    next_url: str | None = None,
    remember: bool = True,
    transport: str = "cookie",
    new_account: bool = False,
    key: tuple[str, str] | None = None,
) -> BaseResponse:
    """Where every sign-in ends: ``user`` proved ``amr`` (``("pwd",)``, ``("passkey",)``,
    ``("oauth:github",)``, ``("link", "otp")``, ``("code",)``); run the stages and answer.

    The answer is a pending sign-in (JSON 401 ``AUTH_SECOND_FACTOR_REQUIRED`` or
    ``AUTH_SECOND_FACTOR_SETUP_REQUIRED``, or a redirect to its page; never a token), a
    refusal, or the new session: JSON ``{"user", "session"}`` (and the tokens with
    ``transport="body"``, no cookie), or for a form a redirect to ``next_url`` (a safe
    one; the caller checks it) or home. ``remember``: "remember me"; ``new_account``:
    made in this request (no new-device mail); ``key``: the key a password or code
    proved, for the device cookie of a whole sign-in (a pending one gets none: the cookie
    is proof of a whole sign-in)."""
    user_id, methods = state().users.id_of(user), assurance.check(amr)
    attempt = SignIn(user, user_id, methods, next_url, remember, transport, new_account, key)
    for _, stage in (*CORE_STAGES, *pipeline().stages):
        answer = stage(attempt)
        if answer is not None:
            return answer
    return start_session(attempt)


def start_session(attempt: SignIn) -> BaseResponse:
    """The session of a sign-in that passed every stage, and its answer."""
    user, amr, fresh = attempt.user, attempt.amr, True
    if attempt.transport == "body":
        session, tokens = issue_session(user, fresh=fresh, remember=attempt.remember, amr=amr)
        return jsonify({**session_body(user, session), **token_body(session, tokens)})
    sign_in(user, fresh=fresh, remember=attempt.remember, amr=amr, new_account=attempt.new_account)
    if attempt.key is not None:
        remember_device(*attempt.key)
    if json_wanted():
        return jsonify(session_body(user, request_state._lucia_session))
    return redirect(attempt.next_url or request.script_root + "/", 303)


def token_body(session: Session, tokens: Tokens) -> dict[str, Any]:
    """The token pair of a body-transport answer, with expiries in unix ms."""
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "access_expires": session.expires_ms,
        "refresh_expires": int(session.idle_expires.timestamp() * 1000),
    }


def after_sign_up(user_id: Any, client_address: str | None) -> None:
    """Run what the features do for a new account (the email feature mails its first
    verification link)."""
    for hook in pipeline().signed_up:
        hook(user_id, client_address)


# -- the stages ----------------------------------------------------------------------------


def factors_of(user_id: Any) -> list[str]:
    """The second-factor methods a user has, as the features registered them."""
    found: list[str] = []
    for factors in pipeline().factors:
        found.extend(method for method in factors(user_id) if method not in found)
    return found


def mfa_required_for(user: Any) -> bool:
    """Whether ``LUCIA_MFA_REQUIRED`` asks this user for a second factor."""
    required = pending_state().settings.mfa_required
    return bool(required(user)) if callable(required) else required


def trusted_here(user_id: Any) -> bool:
    """Whether this browser's device cookie is trusted by the user (DESIGN §19)."""
    auth = state()
    presented = presented_device()
    if presented is None or not pending_state().settings.trust_for:
        return False
    for key in auth.get_user_provider_ids(user_id):
        nonce = auth.device_nonce(key, presented)
        if nonce is not None and auth.is_trusted(user_id, nonce):
            return True
    return False


def trust_this_browser(user_id: Any) -> bool:
    """ "Trust this browser" (DESIGN §19): bind a trust to this browser's device cookie (one
    is given now if it has none) and this user, for ``LUCIA_MFA_TRUST_FOR``; False where
    there can be none (trust off, device cookies off, no ``SECRET_KEY``)."""
    auth, ttl = state(), pending_state().settings.trust_for
    keys = auth.get_user_provider_ids(user_id)
    if not ttl or not keys:
        return False
    nonce = request_state.get("_lucia_device_nonce")
    presented = presented_device()
    if nonce is None and presented is not None:
        nonce = next(filter(None, (auth.device_nonce(key, presented) for key in keys)), None)
    if nonce is None:
        issued = auth.new_device(keys[0])
        if issued is None:
            return False
        request_state._lucia_device_cookie, nonce = issued
    auth.trust_browser(user_id, nonce, ttl)
    return True


def allowed_stage(attempt: SignIn) -> BaseResponse | None:
    """``LUCIA_ALLOW_SIGN_IN(user)`` said no: a 403, and nobody signed in."""
    allow = current_app.config["LUCIA_ALLOW_SIGN_IN"]
    if allow is None or allow(attempt.user):
        return None
    error = LuciaError("AUTH_INVALID_REQUEST", "This account cannot sign in.")
    return error_response(error, 403) if json_wanted() else error_page(error, 403)


def second_factor_stage(attempt: SignIn) -> BaseResponse | None:
    """An account with a second factor (TOTP; any factor at all while MFA is required)
    gets a pending sign-in, unless the way in gave one or this browser is trusted."""
    if assurance.level(attempt.amr) == 2:
        return None
    user_id = attempt.user_id
    enforced = state().has_second_factor(user_id) or (
        mfa_required_for(attempt.user) and bool(factors_of(user_id))
    )
    if not enforced:
        return None
    if trusted_here(user_id):
        attempt.amr = (*attempt.amr, "device")
        return None
    return answer_pending(user_id, attempt.next_url, attempt.amr, remember=attempt.remember)


def enrolment_stage(attempt: SignIn) -> BaseResponse | None:
    """``LUCIA_MFA_REQUIRED`` and the user has no second factor: a pending sign-in that
    must set one up first (``AUTH_SECOND_FACTOR_SETUP_REQUIRED``)."""
    if assurance.level(attempt.amr) == 2 or not mfa_required_for(attempt.user):
        return None
    if factors_of(attempt.user_id):
        return None
    return answer_pending(
        attempt.user_id, attempt.next_url, attempt.amr, remember=attempt.remember, setup=True
    )


#: The stages every app runs, in order, before the ones features registered.
CORE_STAGES: tuple[tuple[str, Stage], ...] = (
    ("allowed", allowed_stage),
    ("second_factor", second_factor_stage),
    ("enrolment", enrolment_stage),
)

#: Every way in and the methods it proves when it calls ``finish_sign_in``.
WAYS_IN: dict[str, tuple[str, ...]] = {
    "Password (sign-in, sign-up)": ("pwd",),
    "Provider (GitHub, Google, OpenID Connect)": ("oauth:<name>",),
    "Passkey (user verification)": ("passkey",),
    "Reset link": ("link",),
    "Reset link, with the code it asks for": ("link", "otp"),
    "Email code": ("code",),
}


def stage_table() -> str:
    """The docs' table of which stages run for each way in (docs/pipeline.rst, checked by
    a test against this function so that it cannot drift from the code)."""
    rows = [("Way in", "amr", *(name for name, _ in CORE_STAGES), "Session")]
    for way, amr in WAYS_IN.items():
        two = assurance.level(a for a in amr if not a.startswith("oauth:")) == 2
        cells = {
            "allowed": "runs",
            "second_factor": "skipped: two factors" if two else "if the account has one",
            "enrolment": "skipped: two factors" if two else "if LUCIA_MFA_REQUIRED",
        }
        stages = (cells[name] for name, _ in CORE_STAGES)
        rows.append((way, " ".join(amr), *stages, f"aal {2 if two else '1 (2 after a factor)'}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * width for width in widths)

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()

    return "\n".join([rule, line(rows[0]), rule, *map(line, rows[1:]), rule])
