"""User, Session and Tokens: immutable values the API returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from flask_lucia.core.tokens import checksum

#: ``User.email_verified`` not read yet.
_UNREAD = object()


def from_ms(ms: int) -> datetime:
    """An aware UTC datetime from the integer milliseconds stored in the database."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


@dataclass(frozen=True)
class User:
    """A user: id, ``provider:identifier``, and the app's columns (never the hash)."""

    user_id: str
    provider_id: str
    data: Mapping[str, Any] = field(default_factory=dict)

    is_authenticated: ClassVar[bool] = True
    is_active: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False

    def __getattr__(self, name: str) -> Any:
        """Expose the app's user columns as attributes (``user.username``)."""
        data = self.__dict__.get("data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(name)

    @property
    def id(self) -> str:
        """The user id, as Flask-Login apps spell it (``current_user.id``)."""
        return self.user_id

    @property
    def identifier(self) -> str:
        """The identifier of the first key: ``ann@example.com`` of ``email:ann@example.com``."""
        return self.provider_id.partition(":")[2]

    def get_id(self) -> str:
        """Flask-Login compatible id accessor."""
        return self.user_id

    @property
    def email_verified(self) -> datetime | None:
        """When the user's email address was verified (an aware UTC datetime), or None:
        not verified, or no email key. Read from the database on first use (app context)."""
        cached = self.__dict__.get("_email_verified", _UNREAD)
        if cached is _UNREAD:
            from flask import current_app  # only when asked, in an app context

            cached = current_app.extensions["lucia"].email_verified(self.user_id)
            object.__setattr__(self, "_email_verified", cached)
        return cached  # type: ignore[no-any-return]

    def public(self, columns: Iterable[str] = ()) -> dict[str, Any]:
        """The fields fit for a browser: the id and only the named columns (none by default)."""
        return {"user_id": self.user_id, **{name: self.data[name] for name in columns}}


@dataclass(frozen=True)
class Session:
    """One signed-in device; ``session_id`` is public, never a token."""

    session_id: str
    user_id: Any  # a str, or the type of the app's user model's primary key
    expires: datetime
    idle_expires: datetime
    created_at: datetime
    fresh: bool
    last_used_at: datetime | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    remember: bool = True
    #: Signed in with a second factor (DESIGN §15): a TOTP or recovery code, or a passkey.
    mfa: bool = False
    #: How it was made (DESIGN §19): method names such as ``("pwd", "otp")``, ``("passkey",)``
    #: or ``("oauth:github",)``; empty for a session made before they were recorded.
    amr: tuple[str, ...] = ()

    @property
    def aal(self) -> int:
        """The assurance level: 2 when a second factor was proved (``mfa``), else 1."""
        return 2 if self.mfa else 1

    @property
    def checksum(self) -> str:
        """A digest of the session id, shared with scripts and other tabs."""
        return checksum(self.session_id)

    @property
    def expires_ms(self) -> int:
        """The access token's expiry as unix milliseconds (the browser's unit)."""
        return int(self.expires.timestamp() * 1000)


@dataclass(frozen=True)
class Tokens:
    """A new token pair and the ``Set-Cookie`` values that carry it (raw, never stored)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    cookies: tuple[str, ...] = field(default=(), repr=False)


class AnonymousUser:
    """The user of a request with no valid session: falsy and not authenticated."""

    user_id: None = None
    id: None = None
    provider_id: None = None
    identifier: None = None
    is_authenticated: ClassVar[bool] = False
    is_active: ClassVar[bool] = False
    is_anonymous: ClassVar[bool] = True

    @property
    def data(self) -> Mapping[str, Any]:
        """No data: an empty mapping."""
        return {}

    def __bool__(self) -> bool:
        return False

    def get_id(self) -> None:
        """Flask-Login compatible id accessor."""
        return None

    def __repr__(self) -> str:
        return "<AnonymousUser>"


ANONYMOUS = AnonymousUser()
