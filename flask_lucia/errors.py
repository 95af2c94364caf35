"""LuciaError and its codes: the one exception every public function raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from flask_lucia.i18n import N_, gettext

ErrorCode = Literal[
    "AUTH_INVALID_ACCESS_TOKEN",
    "AUTH_INVALID_REFRESH_TOKEN",
    "AUTH_INVALID_PASSWORD",
    "AUTH_INVALID_PROVIDER_ID",
    "AUTH_INVALID_USER_ID",
    "AUTH_DUPLICATE_PROVIDER_ID",
    "AUTH_DUPLICATE_USER_DATA",
    "AUTH_OUTDATED_PASSWORD",
    "AUTH_INVALID_REQUEST",
    "AUTH_NOT_AUTHENTICATED",
    "AUTH_TOO_MANY_ATTEMPTS",
    "DATABASE_FETCH_FAILED",
    "DATABASE_UPDATE_FAILED",
    "UNKNOWN_ERROR",
    # DESIGN §17, part two
    "AUTH_LAST_PROVIDER_ID",
    "AUTH_USER_REFERENCED",
    "AUTH_INVALID_TOKEN",
    "AUTH_EMAIL_NOT_VERIFIED",
    "AUTH_OAUTH_FAILED",
    "AUTH_SECOND_FACTOR_REQUIRED",
    "AUTH_INVALID_CODE",
    # DESIGN §26, part three
    "AUTH_SECOND_FACTOR_SETUP_REQUIRED",
]

#: HTTP status each code answers with when it reaches a response.
STATUS: Final[dict[str, int]] = {
    "AUTH_INVALID_ACCESS_TOKEN": 401,
    "AUTH_INVALID_REFRESH_TOKEN": 401,
    "AUTH_INVALID_PASSWORD": 400,
    "AUTH_INVALID_PROVIDER_ID": 400,
    "AUTH_INVALID_USER_ID": 404,
    "AUTH_DUPLICATE_PROVIDER_ID": 409,
    "AUTH_DUPLICATE_USER_DATA": 409,
    "AUTH_OUTDATED_PASSWORD": 400,
    "AUTH_INVALID_REQUEST": 403,
    "AUTH_NOT_AUTHENTICATED": 401,
    "AUTH_TOO_MANY_ATTEMPTS": 429,
    "DATABASE_FETCH_FAILED": 503,
    "DATABASE_UPDATE_FAILED": 503,
    "UNKNOWN_ERROR": 500,
    "AUTH_LAST_PROVIDER_ID": 409,
    "AUTH_USER_REFERENCED": 409,
    "AUTH_INVALID_TOKEN": 400,
    "AUTH_EMAIL_NOT_VERIFIED": 403,
    "AUTH_OAUTH_FAILED": 400,  # 502 when the provider is down, slow or broken
    "AUTH_SECOND_FACTOR_REQUIRED": 401,
    "AUTH_SECOND_FACTOR_SETUP_REQUIRED": 401,
    "AUTH_INVALID_CODE": 400,
}

_MESSAGES: Final[dict[str, str]] = {
    "AUTH_INVALID_ACCESS_TOKEN": N_("The access token is invalid or expired."),
    "AUTH_INVALID_REFRESH_TOKEN": N_("The refresh token is invalid, spent or expired."),
    "AUTH_INVALID_PASSWORD": N_("The identifier or password is incorrect."),
    "AUTH_INVALID_PROVIDER_ID": N_("No user has this provider id."),
    "AUTH_INVALID_USER_ID": N_("No user has this id."),
    "AUTH_DUPLICATE_PROVIDER_ID": N_("A user with this provider id already exists."),
    "AUTH_DUPLICATE_USER_DATA": N_("Another user already has this value in a unique column."),
    "AUTH_OUTDATED_PASSWORD": N_("The stored password hash cannot be verified here."),
    "AUTH_INVALID_REQUEST": N_("The request failed the cross-site request check."),
    "AUTH_NOT_AUTHENTICATED": N_("Sign in to continue."),
    "AUTH_TOO_MANY_ATTEMPTS": N_("Too many failed attempts; try again later."),
    "AUTH_LAST_PROVIDER_ID": N_("This is the account's last way to sign in; add another first."),
    "AUTH_USER_REFERENCED": N_("This account still has data that refers to it."),
    "AUTH_INVALID_TOKEN": N_("This link is invalid, already used or expired."),
    "AUTH_EMAIL_NOT_VERIFIED": N_("Verify your email address to continue."),
    "AUTH_OAUTH_FAILED": N_("Signing in through the provider failed."),
    "AUTH_SECOND_FACTOR_REQUIRED": N_("Enter the code from your authenticator app to continue."),
    "AUTH_SECOND_FACTOR_SETUP_REQUIRED": N_(
        "This site asks for two-step verification: set it up to finish signing in."
    ),
    "AUTH_INVALID_CODE": N_("That code is not right, or it was already used."),
    "DATABASE_FETCH_FAILED": N_("The authentication database could not be read."),
    "DATABASE_UPDATE_FAILED": N_("The authentication database could not be written."),
    "UNKNOWN_ERROR": N_("An unknown error occurred."),
}


#: Words an error says to a person; ``flask_lucia.messages`` sets it as it loads (this
#: module imports only flask_lucia.i18n).
_wording: Callable[[LuciaError], str] | None = None


def set_wording(wording: Callable[[LuciaError], str]) -> None:
    """Where ``LuciaError.user_message`` comes from (``messages.for_error``)."""
    global _wording
    _wording = wording


class LuciaError(Exception):
    """An authentication failure; ``code`` is one of the DESIGN §9 codes."""

    def __init__(
        self, code: ErrorCode, message: str | None = None, *, retry_after: int | None = None
    ) -> None:
        self.code: ErrorCode = code
        #: The sentence for people, in the request's language when the app has Flask-Babel
        #: (a message given in English that the catalogs know is translated too).
        self.message: str = gettext(message or _MESSAGES[code])
        #: Seconds to wait before trying again (``AUTH_TOO_MANY_ATTEMPTS``).
        self.retry_after = retry_after
        super().__init__(f"{code}: {self.message}")

    @property
    def user_message(self) -> str:
        """What a person should read about this error, in the built-in pages' words ("Wrong
        email or password.", "Too many attempts. Try again in 4 minutes."): for an app's
        own forms. ``message`` is for developers and logs."""
        return self.message if _wording is None else _wording(self)

    @property
    def status(self) -> int:
        """The HTTP status this error answers with."""
        return STATUS[self.code]

    def to_dict(self) -> dict[str, str]:
        """The JSON error body: ``{"error": code, "message": text}``."""
        return {"error": self.code, "message": self.message}
