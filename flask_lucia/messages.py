"""What the built-in pages and the sign-in, sign-up and confirm endpoints say to a person.

Every sentence a user reads lives here, so an app (or a translation) changes one
module. Errors keep their code; only the ``message`` is reworded for people.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Literal

from flask import current_app, has_app_context

from flask_lucia import errors
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import N_, format_ago, format_moment, gettext, locale, ngettext

Action = Literal["sign_in", "sign_up", "confirm"]
#: What a form did, for the heading of the page that says so (``/auth/done``).
Outcome = Literal["password_changed", "password_reset", "account_deleted"]
OUTCOME_TITLES: Final[dict[str, str]] = {
    "password_changed": N_("Password changed"),
    "password_reset": N_("New password set"),
    "account_deleted": N_("Account deleted"),
}
PASSWORD_CHANGED: Final = N_("Your password has been changed, and your other devices signed out.")
PASSWORD_RESET: Final = N_(
    "Your new password is set. Every other device was signed out, and this one is signed in."
)
ACCOUNT_DELETED: Final = N_("Your account has been deleted, and every device signed out of it.")

# The constants are English msgids: translate them where they are shown (``gettext(X)``; a
# ``LuciaError`` message is translated by the error itself).

#: A form posted with an expired or missing Flask-WTF CSRF token.
FORM_EXPIRED: Final = N_("This form expired before it was sent. Check it and send it again.")
#: A cookie-authenticated or form request from another site (DESIGN §5).
CROSS_SITE: Final = N_(
    "This request came from another site, so it was refused. "
    "Go back, reload the page and try again."
)
#: A page that needs a second factor, for an account that has none yet (``mfa_required``).
SECOND_FACTOR_FIRST: Final = N_(
    "The page you opened needs a second factor. Turn on two-factor authentication, "
    "then open it again."
)
NOT_FOUND: Final = N_("There is no page at this address.")
METHOD_NOT_ALLOWED: Final = N_("This page cannot be used that way.")
TOO_LARGE: Final = N_("What was sent is too large.")

_TITLES: Final = {
    400: N_("This did not work"),
    403: N_("Request refused"),
    404: N_("Page not found"),
    405: N_("Not available"),
    413: N_("Too large"),
    429: N_("Too many attempts"),
    503: N_("Try again soon"),
}
_OTHER_TITLE: Final = N_("Something went wrong")


def page_title(status: int) -> str:
    """The heading of an error page with this HTTP status."""
    return gettext(_TITLES.get(status, _OTHER_TITLE))


def identifier_label() -> str:
    """The word for the identifier in a sentence: ``LUCIA_IDENTIFIER_LABEL`` (an app that
    translates its own words may give a lazy string), else "email" for the ``email``
    provider, else the provider's name; "email or username" for several."""
    config = current_app.config if has_app_context() else {}
    label = config.get("LUCIA_IDENTIFIER_LABEL")
    if not label:
        words = [gettext("email") if str(p) == "email" else str(p) for p in _providers(config)]
        label = words[0]
        for word in words[1:]:
            label = gettext("%(first)s or %(second)s", first=label, second=word)
    return _in_sentence(str(label))


def _providers(config: Any) -> list[Any]:
    """The password providers: ``LUCIA_PASSWORD_PROVIDERS``, else ``LUCIA_PASSWORD_PROVIDER``."""
    return list(
        config.get("LUCIA_PASSWORD_PROVIDERS") or [config.get("LUCIA_PASSWORD_PROVIDER", "email")]
    )


def _by_email() -> bool:
    """Whether the identifier is the email address under its own name, so that sentences
    can name it whole (a translation then needs no word glued in)."""
    config = current_app.config if has_app_context() else {}
    return not config.get("LUCIA_IDENTIFIER_LABEL") and [str(p) for p in _providers(config)] == [
        "email"
    ]


def invalid_identifier() -> str:
    """What sign-up says under an identifier its provider cannot take (an email address
    that is not one), in place of the validating library's words."""
    if identifier_label() == gettext("email"):
        return gettext("Enter an email address, like name@example.com.")
    return gettext("This %(identifier)s cannot be used.", identifier=identifier_label())


def mail_wait(whom: str, wait: str) -> str:
    """What a person reads when a mail limit holds a mail back (``whom``: the limit of
    the "address" or of the "client"): what happened, then when to ask again."""
    if whom == "address":
        return gettext(
            "We just sent an email like this to that address: look for it (and in the spam "
            "folder). You can ask for another in %(wait)s.",
            wait=wait,
        )
    return gettext(
        "Many emails were asked for from this network just now. Try again in %(wait)s.",
        wait=wait,
    )


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
    if seconds < 120:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    if seconds < 7200:
        return ngettext("%(num)d minute", "%(num)d minutes", math.ceil(seconds / 60))
    return ngettext("%(num)d hour", "%(num)d hours", math.ceil(seconds / 3600))


def ago(moment: datetime, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in words: "just now", "2 minutes ago", "3 days ago";
    in the locale's words (Babel) when the app translates."""
    now = now or datetime.now(timezone.utc)
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return gettext("just now")
    if locale() is not None:
        return format_ago(now - moment)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    raise AssertionError("unreachable")  # pragma: no cover


#: The ways in and factors of DESIGN §19 in words (features add theirs: ``oauth:github``).
METHOD_WORDS = {
    "pwd": N_("password"),
    "otp": N_("authenticator app"),
    "recovery": N_("recovery code"),
    "passkey": N_("passkey"),
    "link": N_("emailed link"),
    "code": N_("emailed code"),
    "device": N_("trusted browser"),
}


def way_in(amr: Iterable[str], names: Mapping[str, str] | None = None) -> str:
    """How a session signed in, in words: "password and authenticator app", "passkey",
    "GitHub"; ``names``: method names features registered (a provider's label)."""
    own = {method: gettext(word) for method, word in METHOD_WORDS.items()}
    words = [{**own, **(names or {})}.get(m, m.partition(":")[2] or m) for m in amr]
    if not words:
        return gettext("unknown")
    if len(words) == 1:
        return words[0]
    return gettext("%(items)s and %(last)s", items=", ".join(words[:-1]), last=words[-1])


def exact_time(moment: datetime) -> str:
    """The exact time shown on hover: "2024-06-01 14:03:09 UTC", or the locale's long
    form in the app's Babel time zone ("1. Juni 2024, 14:03:09 UTC")."""
    if locale() is not None:
        return format_moment(moment)
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
    "AUTH_INVALID_ACCESS_TOKEN": N_("Your session has ended. Sign in again."),
    "AUTH_INVALID_REFRESH_TOKEN": N_("Your session has ended. Sign in again."),
    "AUTH_INVALID_USER_ID": N_("This account does not exist any more."),
    "AUTH_INVALID_REQUEST": CROSS_SITE,
    "AUTH_USER_REFERENCED": N_("This account cannot be deleted while it still has data."),
    "DATABASE_FETCH_FAILED": N_("Something went wrong on our side. Try again in a moment."),
    "DATABASE_UPDATE_FAILED": N_("Something went wrong on our side. Try again in a moment."),
    "UNKNOWN_ERROR": N_("Something went wrong on our side. Try again in a moment."),
}


def for_error(error: LuciaError, action: Action = "sign_in") -> str:
    """What a person should read about ``error`` (``LuciaError.user_message``): the
    sentence the built-in pages show for it after ``action``. A message already written
    for people (not the code's default) is kept."""
    if error.message != LuciaError(error.code).message:
        return error.message
    return _message(error, action, None) or gettext(_PLAIN.get(error.code, error.message))


errors.set_wording(for_error)


def _message(error: LuciaError, action: Action, taken: str | None) -> str | None:
    code = error.code
    if code == "AUTH_TOO_MANY_ATTEMPTS":
        if error.retry_after is None:
            return gettext("Too many attempts. Try again later.")
        wait = wait_text(error.retry_after)
        return gettext("Too many attempts. Try again in %(wait)s.", wait=wait)
    if code in ("AUTH_INVALID_PASSWORD", "AUTH_INVALID_PROVIDER_ID") and action != "sign_up":
        if action == "confirm":
            return gettext("Wrong password.")
        if _by_email():
            return gettext("Wrong email or password.")
        return gettext("Wrong %(identifier)s or password.", identifier=identifier_label())
    if code == "AUTH_DUPLICATE_PROVIDER_ID":
        if _by_email():
            return gettext("An account with this email already exists.")
        return gettext(
            "An account with this %(identifier)s already exists.", identifier=identifier_label()
        )
    if code == "AUTH_DUPLICATE_USER_DATA":
        if taken is None:
            return gettext("Another account already uses some of these details.")
        return gettext("This %(field)s is taken.", field=column_label(taken))
    if code == "AUTH_OUTDATED_PASSWORD":
        return gettext("This account's password cannot be checked here. Ask for it to be reset.")
    return None
