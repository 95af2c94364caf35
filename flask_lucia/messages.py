"""What the built-in pages and the sign-in, sign-up and confirm endpoints say to a person.

Every sentence a user reads lives here, so an app (or a translation) changes one
module. Errors keep their code; only the ``message`` is reworded for people.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Final, Literal

from flask import current_app, has_app_context

from flask_lucia import errors
from flask_lucia.errors import LuciaError

Action = Literal["sign_in", "sign_up", "confirm"]
#: What a form did, for the heading of the page that says so (``/auth/done``).
Outcome = Literal["password_changed", "password_reset", "account_deleted"]
OUTCOME_TITLES: Final[dict[str, str]] = {
    "password_changed": "Password changed",
    "password_reset": "New password set",
    "account_deleted": "Account deleted",
}
PASSWORD_CHANGED: Final = "Your password has been changed, and your other devices signed out."
PASSWORD_RESET: Final = (
    "Your new password is set. Every other device was signed out, and this one is signed in."
)
ACCOUNT_DELETED: Final = "Your account has been deleted, and every device signed out of it."

#: A form posted with an expired or missing Flask-WTF CSRF token.
FORM_EXPIRED: Final = "This form expired before it was sent. Check it and send it again."
#: A cookie-authenticated or form request from another site (DESIGN §5).
CROSS_SITE: Final = (
    "This request came from another site, so it was refused. "
    "Go back, reload the page and try again."
)
#: A page that needs a second factor, for an account that has none yet (``mfa_required``).
SECOND_FACTOR_FIRST: Final = (
    "The page you opened needs a second factor. Turn on two-factor authentication, "
    "then open it again."
)
NOT_FOUND: Final = "There is no page at this address."
METHOD_NOT_ALLOWED: Final = "This page cannot be used that way."
TOO_LARGE: Final = "What was sent is too large."

_UNITS: Final = (("hour", 3600), ("minute", 60), ("second", 1))
_TITLES: Final = {
    400: "This did not work",
    403: "Request refused",
    404: "Page not found",
    405: "Not available",
    413: "Too large",
    429: "Too many attempts",
    503: "Try again soon",
}


def page_title(status: int) -> str:
    """The heading of an error page with this HTTP status."""
    return _TITLES.get(status, "Something went wrong")


def identifier_label() -> str:
    """The word for the identifier in a sentence: ``LUCIA_IDENTIFIER_LABEL``, else
    "email" for the ``email`` provider, else the provider's name."""
    config = current_app.config if has_app_context() else {}
    label = config.get("LUCIA_IDENTIFIER_LABEL")
    if not label:
        providers = config.get("LUCIA_PASSWORD_PROVIDERS") or [
            config.get("LUCIA_PASSWORD_PROVIDER", "email")
        ]
        label = " or ".join(str(provider) for provider in providers)
    return _in_sentence(str(label))


def invalid_identifier() -> str:
    """What sign-up says under an identifier its provider cannot take (an email address
    that is not one), in place of the validating library's words."""
    if identifier_label() == "email":
        return "Enter an email address, like name@example.com."
    return f"This {identifier_label()} cannot be used."


def mail_wait(whom: str, wait: str) -> str:
    """What a person reads when a mail limit holds a mail back (``whom``: the limit of
    the "address" or of the "client"): what happened, then when to ask again."""
    if whom == "address":
        return (
            "We just sent an email like this to that address: look for it (and in the spam "
            f"folder). You can ask for another in {wait}."
        )
    return f"Many emails were asked for from this network just now. Try again in {wait}."


def column_label(name: str) -> str:
    """A user column as a word in a sentence: ``display_name`` -> "display name"."""
    return _in_sentence(name.replace("_", " "))


def _in_sentence(label: str) -> str:
    """Lower the first letter ("Email" -> "email"), unless the word is an acronym ("URL")."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def wait_text(seconds: int) -> str:
    """A wait in words, rounded up: 45 -> "45 seconds", 240 -> "4 minutes", 3 h -> "3 hours".

    Seconds under two minutes, minutes under two hours, hours beyond.
    """
    seconds = max(int(seconds), 1)
    unit, size = next((u, s) for u, s in _UNITS if seconds >= 2 * s or s == 1)
    count = math.ceil(seconds / size)
    return f"{count} {unit}{'' if count == 1 else 's'}"


def ago(moment: datetime, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in words: "just now", "2 minutes ago", "3 days ago"."""
    now = now or datetime.now(timezone.utc)
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    raise AssertionError("unreachable")  # pragma: no cover


#: The ways in and factors of DESIGN §19 in words (features add theirs: ``oauth:github``).
METHOD_WORDS = {
    "pwd": "password",
    "otp": "authenticator app",
    "recovery": "recovery code",
    "passkey": "passkey",
    "link": "emailed link",
    "code": "emailed code",
    "device": "trusted browser",
}


def way_in(amr: Iterable[str], names: Mapping[str, str] | None = None) -> str:
    """How a session signed in, in words: "password and authenticator app", "passkey",
    "GitHub"; ``names``: method names features registered (a provider's label)."""
    words = [{**METHOD_WORDS, **(names or {})}.get(m, m.partition(":")[2] or m) for m in amr]
    if not words:
        return "unknown"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def exact_time(moment: datetime) -> str:
    """The exact time shown on hover: "2024-06-01 14:03:09 UTC"."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def for_user(error: LuciaError, action: Action, *, taken: str | None = None) -> LuciaError:
    """``error`` reworded for the person who sent the form (same code, same ``retry_after``).

    Only the library's default sentences are reworded: a message already written for
    people ("Password must be at least 8 characters.") is kept. ``taken`` names the user
    column whose value another account already has.
    """
    if error.message != LuciaError(error.code).message:
        return error
    message = _message(error, action, taken)
    if message is None:
        return error
    return LuciaError(error.code, message, retry_after=error.retry_after)


#: What a person reads for the codes whose default wording is for developers.
_PLAIN: Final = {
    "AUTH_INVALID_ACCESS_TOKEN": "Your session has ended. Sign in again.",
    "AUTH_INVALID_REFRESH_TOKEN": "Your session has ended. Sign in again.",
    "AUTH_INVALID_USER_ID": "This account does not exist any more.",
    "AUTH_INVALID_REQUEST": CROSS_SITE,
    "AUTH_USER_REFERENCED": "This account cannot be deleted while it still has data.",
    "DATABASE_FETCH_FAILED": "Something went wrong on our side. Try again in a moment.",
    "DATABASE_UPDATE_FAILED": "Something went wrong on our side. Try again in a moment.",
    "UNKNOWN_ERROR": "Something went wrong on our side. Try again in a moment.",
}


def for_error(error: LuciaError, action: Action = "sign_in") -> str:
    """What a person should read about ``error`` (``LuciaError.user_message``): the
    sentence the built-in pages show for it after ``action``. A message already written
    for people (not the code's default) is kept."""
    if error.message != LuciaError(error.code).message:
        return error.message
    return _message(error, action, None) or _PLAIN.get(error.code, error.message)


errors.set_wording(for_error)


def _message(error: LuciaError, action: Action, taken: str | None) -> str | None:
    code = error.code
    if code == "AUTH_TOO_MANY_ATTEMPTS":
        if error.retry_after is None:
            return "Too many attempts. Try again later."
        return f"Too many attempts. Try again in {wait_text(error.retry_after)}."
    if code in ("AUTH_INVALID_PASSWORD", "AUTH_INVALID_PROVIDER_ID") and action != "sign_up":
        if action == "confirm":
            return "Wrong password."
        return f"Wrong {identifier_label()} or password."
    if code == "AUTH_DUPLICATE_PROVIDER_ID":
        return f"An account with this {identifier_label()} already exists."
    if code == "AUTH_DUPLICATE_USER_DATA":
        if taken is None:
            return "Another account already uses some of these details."
        return f"This {column_label(taken)} is taken."
    if code == "AUTH_OUTDATED_PASSWORD":
        return "This account's password cannot be checked here. Ask for it to be reset."
    return None
