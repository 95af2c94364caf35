"""flask-lucia: Lucia-style authentication for Flask."""

from flask_lucia.core.cookies import set_cookie
from flask_lucia.core.tokens import generate_random_string
from flask_lucia.errors import LuciaError
from flask_lucia.extension import Lucia
from flask_lucia.types import AnonymousUser, Session, Tokens, User
from flask_lucia.web.decorators import (
    fresh_login_required,
    login_required,
    mfa_required,
    verified_required,
)
from flask_lucia.web.hook import sign_in, sign_out
from flask_lucia.web.proxies import current_session, current_user
from flask_lucia.web.redirects import safe_next_url

__all__ = [
    "AnonymousUser",
    "Lucia",
    "LuciaError",
    "Session",
    "Tokens",
    "User",
    "current_session",
    "current_user",
    "fresh_login_required",
    "generate_random_string",
    "login_required",
    "mfa_required",
    "safe_next_url",
    "set_cookie",
    "sign_in",
    "sign_out",
    "verified_required",
]
