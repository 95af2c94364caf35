"""The ``LUCIA_*`` config keys, their defaults, and the parsed settings an app runs on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: Every key with its default; ``init_app`` applies them with ``setdefault``.
DEFAULTS: dict[str, Any] = {
    "LUCIA_DATABASE_URL": None,  # None: SQLite file in the instance folder
    "LUCIA_ENGINE_OPTIONS": {},
    "LUCIA_CREATE_TABLES": True,
    "LUCIA_TABLE_PREFIX": "lucia_",
    "LUCIA_ACCESS_TOKEN_TTL": timedelta(minutes=15),
    "LUCIA_REFRESH_TOKEN_TTL": timedelta(days=14),
    "LUCIA_SESSION_MAX_AGE": timedelta(days=30),
    "LUCIA_FRESH_FOR": timedelta(minutes=10),
    "LUCIA_REFRESH_GRACE": timedelta(seconds=30),
    "LUCIA_ACCESS_COOKIE_NAME": "lucia_access_token",
    "LUCIA_REFRESH_COOKIE_NAME": "lucia_refresh_token",
    "LUCIA_COOKIE_SECURE": None,  # None: Secure unless the app is in debug or testing
    "LUCIA_COOKIE_SAMESITE": "Lax",
    "LUCIA_COOKIE_DOMAIN": None,
    "LUCIA_COOKIE_PATH": "/",
    "LUCIA_CSRF_PROTECTION": True,
    "LUCIA_TRUSTED_ORIGINS": (),
    "LUCIA_URL_PREFIX": "/auth",
    "LUCIA_REGISTER_VIEWS": True,
    "LUCIA_LOGIN_VIEW": None,
    "LUCIA_PASSWORD_PROVIDER": "email",
    "LUCIA_PASSWORD_TIME_COST": 2,
    "LUCIA_PASSWORD_MEMORY_COST": 19456,  # KiB: OWASP's 19 MiB
    "LUCIA_PASSWORD_PARALLELISM": 1,
    "LUCIA_PASSWORD_MIN_LENGTH": 8,
    "LUCIA_PASSWORD_MAX_LENGTH": 256,
    "LUCIA_IDENTIFIER_MAX_LENGTH": 255,
    "LUCIA_PUBLIC_USER_COLUMNS": None,  # None: every user column is shown to the browser
    "LUCIA_GENERATE_USER_ID": None,
}


def to_ms(value: object, key: str) -> int:
    """Seconds (int or float) or a ``timedelta`` as whole milliseconds; reject the rest."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{key} must be seconds or a timedelta, not {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"{key} must not be negative")
    return int(seconds * 1000)


@dataclass(frozen=True)
class Settings:
    """The config an app's authentication runs on, parsed once at ``init_app``."""

    access_ttl: int
    refresh_ttl: int
    max_age: int
    fresh_for: int
    grace: int
    access_cookie: str
    refresh_cookie: str
    cookie_secure: bool | None
    cookie_samesite: str | None
    cookie_domain: str | None
    cookie_path: str
    csrf: bool
    trusted_origins: frozenset[str]
    password_provider: str
    identifier_max_length: int
    public_columns: tuple[str, ...] | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Parse and check the ``LUCIA_*`` keys of ``config``."""
        public = config["LUCIA_PUBLIC_USER_COLUMNS"]
        return cls(
            access_ttl=to_ms(config["LUCIA_ACCESS_TOKEN_TTL"], "LUCIA_ACCESS_TOKEN_TTL"),
            refresh_ttl=to_ms(config["LUCIA_REFRESH_TOKEN_TTL"], "LUCIA_REFRESH_TOKEN_TTL"),
            max_age=to_ms(config["LUCIA_SESSION_MAX_AGE"], "LUCIA_SESSION_MAX_AGE"),
            fresh_for=to_ms(config["LUCIA_FRESH_FOR"], "LUCIA_FRESH_FOR"),
            grace=to_ms(config["LUCIA_REFRESH_GRACE"], "LUCIA_REFRESH_GRACE"),
            access_cookie=config["LUCIA_ACCESS_COOKIE_NAME"],
            refresh_cookie=config["LUCIA_REFRESH_COOKIE_NAME"],
            cookie_secure=config["LUCIA_COOKIE_SECURE"],
            cookie_samesite=config["LUCIA_COOKIE_SAMESITE"],
            cookie_domain=config["LUCIA_COOKIE_DOMAIN"],
            cookie_path=config["LUCIA_COOKIE_PATH"],
            csrf=bool(config["LUCIA_CSRF_PROTECTION"]),
            trusted_origins=frozenset(_origins(config["LUCIA_TRUSTED_ORIGINS"])),
            password_provider=config["LUCIA_PASSWORD_PROVIDER"],
            identifier_max_length=int(config["LUCIA_IDENTIFIER_MAX_LENGTH"]),
            public_columns=None if public is None else tuple(public),
        )


def _origins(value: str | Iterable[str]) -> Iterable[str]:
    """Trusted origins, normalized to lower case without a trailing slash."""
    items = [value] if isinstance(value, str) else value
    return (item.rstrip("/").lower() for item in items)
