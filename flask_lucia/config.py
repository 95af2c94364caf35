"""The ``LUCIA_*`` config keys, their defaults, and the parsed settings an app runs on."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .csrf import origin_of

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
    # LUCIA_LOGIN_VIEW: "lucia.sign_in" while the form views are registered, else None.
    "LUCIA_PASSWORD_PROVIDER": "email",
    "LUCIA_PASSWORD_TIME_COST": 2,
    "LUCIA_PASSWORD_MEMORY_COST": 19456,  # KiB: OWASP's 19 MiB
    "LUCIA_PASSWORD_PARALLELISM": 1,
    "LUCIA_PASSWORD_MIN_LENGTH": 8,
    "LUCIA_PASSWORD_MAX_LENGTH": 256,
    "LUCIA_IDENTIFIER_MAX_LENGTH": 255,
    "LUCIA_THROTTLE": True,
    "LUCIA_THROTTLE_WINDOW": timedelta(hours=1),
    "LUCIA_THROTTLE_MAX_FAILURES": 100,  # per identifier and window (ASVS 2.2.1)
    "LUCIA_THROTTLE_FREE_ATTEMPTS": 5,  # failures before delays start (1 s, 2 s, 4 s ...)
    "LUCIA_THROTTLE_MAX_DELAY": timedelta(minutes=15),
    "LUCIA_THROTTLE_IP_MAX_FAILURES": 1000,  # per client address and window
    "LUCIA_THROTTLE_IP_FREE_ATTEMPTS": 50,
    "LUCIA_DEVICE_COOKIE_NAME": "lucia_device",  # None: no device cookies (no own budgets)
    "LUCIA_DEVICE_COOKIE_MAX_AGE": timedelta(days=365),
    "LUCIA_TOUCH_INTERVAL": timedelta(minutes=5),  # how often last_used_at is written
    "LUCIA_PUBLIC_USER_COLUMNS": None,  # None: every user column is shown to the browser
    "LUCIA_SIGN_UP_COLUMNS": None,  # None: sign-up may set every user column
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
    if not math.isfinite(seconds):
        raise ValueError(f"{key} must be a finite duration")
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
    sign_up_columns: tuple[str, ...]
    touch_interval: int
    device_cookie: str | None
    device_max_age: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any], columns: tuple[str, ...] = ()) -> Settings:
        """Parse and check the ``LUCIA_*`` keys of ``config`` (``columns``: the user columns)."""
        public = _columns(config, "LUCIA_PUBLIC_USER_COLUMNS", columns)
        sign_up = _columns(config, "LUCIA_SIGN_UP_COLUMNS", columns)
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
            csrf=_flag(config, "LUCIA_CSRF_PROTECTION"),
            trusted_origins=_origins(config["LUCIA_TRUSTED_ORIGINS"]),
            password_provider=config["LUCIA_PASSWORD_PROVIDER"],
            identifier_max_length=int(config["LUCIA_IDENTIFIER_MAX_LENGTH"]),
            public_columns=public,
            sign_up_columns=columns if sign_up is None else sign_up,
            touch_interval=to_ms(config["LUCIA_TOUCH_INTERVAL"], "LUCIA_TOUCH_INTERVAL"),
            device_cookie=_device_cookie(config),
            device_max_age=to_ms(
                config["LUCIA_DEVICE_COOKIE_MAX_AGE"], "LUCIA_DEVICE_COOKIE_MAX_AGE"
            ),
        )


def _columns(
    config: Mapping[str, Any], key: str, columns: tuple[str, ...]
) -> tuple[str, ...] | None:
    """A list of user column names (or None); names that are not user columns are refused."""
    value = config[key]
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise ValueError(f"{key}: {', '.join(map(str, unknown))} not among the user columns")
    return names


def _device_cookie(config: Mapping[str, Any]) -> str | None:
    """``LUCIA_DEVICE_COOKIE_NAME``: a cookie name of its own, or None (device cookies off)."""
    name = config["LUCIA_DEVICE_COOKIE_NAME"]
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ValueError("LUCIA_DEVICE_COOKIE_NAME must be a cookie name, or None to turn it off")
    if name in (config["LUCIA_ACCESS_COOKIE_NAME"], config["LUCIA_REFRESH_COOKIE_NAME"]):
        raise ValueError("LUCIA_DEVICE_COOKIE_NAME must differ from the token cookies' names")
    return name


def _flag(config: Mapping[str, Any], key: str) -> bool:
    """A boolean key; a string such as "false" is refused rather than read as True."""
    value = config[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be True or False, not {value!r}")
    return value


def _origins(value: object) -> frozenset[str]:
    """``LUCIA_TRUSTED_ORIGINS`` as normalized origins; each entry must be one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise TypeError("LUCIA_TRUSTED_ORIGINS must be a list of origins")
    origins = set()
    for item in value:
        origin = origin_of(item) if isinstance(item, str) else None
        if origin is None:
            raise ValueError(
                f"LUCIA_TRUSTED_ORIGINS: {item!r} is not an origin like https://a.example"
            )
        origins.add(origin)
    return frozenset(origins)
