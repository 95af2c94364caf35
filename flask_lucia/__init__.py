"""flask-lucia: Lucia-style authentication for Flask."""

from .cookies import set_cookie
from .decorators import fresh_login_required, login_required, mfa_required, verified_required
from .errors import LuciaError
from .extension import Lucia
from .hook import sign_in, sign_out
from .proxies import current_session, current_user
from .redirects import safe_next_url
from .tokens import generate_random_string
from .types import AnonymousUser, Session, Tokens, User

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
