"""A provider's answer as a ``Profile`` (OpenID Connect claims, GitHub's user and emails),
the user data of a user it creates, and the failures of a sign-in as the user reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask_lucia.core.auth import Auth
from flask_lucia.i18n import gettext
from flask_lucia.oauth.settings import Profile

# -- profiles ------------------------------------------------------------------------


def _text(value: object) -> str | None:
    """A non-empty string claim, or None."""
    return value if isinstance(value, str) and value else None


def _subject(value: object) -> str:
    """The provider's account id as a string; a missing or odd one is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise Failure("invalid_profile", "The provider did not say which account signed in.")


def oidc_profile(claims: Mapping[str, Any]) -> Profile:
    """The profile of OpenID Connect claims (Google's and any other provider's).

    ``email_verified`` counts only when it is true (Google once sent the string "true").
    """
    verified = claims.get("email_verified")
    return Profile(
        sub=_subject(claims.get("sub")),
        email=_text(claims.get("email")),
        email_verified=verified is True or verified == "true",
        name=_text(claims.get("name")),
        username=_text(claims.get("preferred_username")),
        picture=_text(claims.get("picture")),
        raw=dict(claims),
    )


def github_profile(user: Mapping[str, Any], emails: Sequence[Any] | None) -> Profile:
    """The profile of GitHub's ``GET /user`` and ``GET /user/emails``.

    The email is the primary address when GitHub has verified it, else any verified one;
    without one, the public address of the profile, marked unverified.
    """
    listed = [e for e in emails or () if isinstance(e, Mapping) and _text(e.get("email"))]
    verified = [e for e in listed if e.get("verified") is True]
    verified.sort(key=lambda e: e.get("primary") is not True)
    email, email_verified = _text(user.get("email")), False
    if verified:
        email, email_verified = verified[0]["email"], True
    login = _text(user.get("login"))
    return Profile(
        sub=_subject(user.get("id")),
        email=email,
        email_verified=email_verified,
        name=_text(user.get("name")) or login,
        username=login,
        picture=_text(user.get("avatar_url")),
        raw={"user": dict(user), "emails": list(emails or [])},
    )


def default_user_data(auth: Auth, profile: Profile) -> dict[str, Any]:
    """A new user's data when the app gives no ``oauth_user_data``: the verified email and
    the name, where the user table has ``email`` and ``name`` columns they fit."""
    wanted = {"email": profile["email"] if profile["email_verified"] else None}
    wanted["name"] = profile["name"]
    columns = auth.storage.users.c
    data: dict[str, Any] = {}
    for name, value in wanted.items():
        if value is None or name not in auth.storage.user_column_names:
            continue
        length = getattr(columns[name].type, "length", None)
        if length is None or len(value) <= length:
            data[name] = value
    return data


# -- failures ------------------------------------------------------------------------


class Failure(Exception):
    """A sign-in through a provider that ends here: ``reason`` is a short code for
    scripts, ``message`` is for people; ``status`` 502 when the provider is at fault."""

    def __init__(self, reason: str, message: str, status: int = 400, detail: str = "") -> None:
        super().__init__(f"{reason}: {message}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        #: Translated like a ``LuciaError``'s message.
        self.message = gettext(message)
        self.status = status


def _protocol_failure(error: Exception, label: str) -> Failure:
    """What went wrong in an Authlib call, as a ``Failure``; unknown errors propagate."""
    import requests
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    if isinstance(error, requests.Timeout):
        message = gettext("%(provider)s did not answer in time. Try again.", provider=label)
        return Failure("provider_timeout", message, 502)
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else "?"
        words = gettext("%(provider)s answered with an error. Try again later.", provider=label)
        return Failure("provider_error", words, 502, detail=f"HTTP {status}")
    if isinstance(error, requests.RequestException):
        message = gettext("%(provider)s could not be reached. Try again.", provider=label)
        return Failure("provider_unreachable", message, 502)
    if isinstance(error, JoseError):
        detail = getattr(error, "description", "") or getattr(error, "error", "")
        words = gettext(
            "%(provider)s sent an answer that failed our checks, so nobody was signed in.",
            provider=label,
        )
        return Failure("invalid_id_token", words, detail=str(detail))
    if isinstance(error, AuthlibBaseError):
        code = getattr(error, "error", None)
        if code == "mismatching_state":
            return Failure(
                "state_mismatch",
                "This sign-in was not started in this browser, or it was finished already. "
                "Start again.",
            )
        if code == "access_denied":
            message = gettext("You did not allow the sign-in at %(provider)s.", provider=label)
            return Failure("access_denied", message)
        if code == "invalid_grant":
            return Failure(
                "invalid_grant",
                gettext(
                    "%(provider)s refused the sign-in code: it was used already or has "
                    "expired. Start again.",
                    provider=label,
                ),
            )
        words = gettext("%(provider)s refused the sign-in.", provider=label)
        return Failure("provider_error", words, detail=str(code))
    if isinstance(error, (ValueError, KeyError, RuntimeError)):  # a malformed answer
        message = gettext("%(provider)s sent an answer that could not be used.", provider=label)
        return Failure("provider_error", message, 502)
    raise error


def _protocol_errors() -> tuple[type[Exception], ...]:
    """The exceptions an Authlib call raises for the provider's part, not for a bug of ours."""
    import requests
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    # RuntimeError: Authlib's word for discovery that lacks an endpoint it needs
    return (
        requests.RequestException,
        AuthlibBaseError,
        JoseError,
        ValueError,
        KeyError,
        RuntimeError,
    )
