"""The ``LUCIA_*`` config keys, their defaults, and the parsed settings an app runs on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask_lucia.core.identifiers import password_providers
from flask_lucia.core.urls import base_url, target, trusted_origins

#: Prefix of cookie names that browsers accept only Secure, host-only, at ``Path=/``.
HOST_PREFIX = "__Host-"

#: Every key with its default; ``init_app`` applies them with ``setdefault``.
DEFAULTS: dict[str, Any] = {
    "LUCIA_DATABASE_URL": None,  # None: SQLite file in the instance folder
    "LUCIA_ENGINE_OPTIONS": {},
    "LUCIA_CREATE_TABLES": None,  # None: on, but off with db= (Flask-SQLAlchemy, Alembic)
    "LUCIA_DATABASE_TIMEOUT": timedelta(seconds=10),  # connect and statement timeout
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
    "LUCIA_COOKIE_HOST_PREFIX": False,  # True: __Host-<name> (Secure, no Domain, Path=/)
    "LUCIA_CSRF_PROTECTION": True,
    "LUCIA_TRUSTED_ORIGINS": (),
    "LUCIA_URL_PREFIX": "/auth",
    # Where the app lives, for every absolute link (mail, OAuth, WebAuthn): see base_url().
    "LUCIA_BASE_URL": None,
    "LUCIA_REGISTER_VIEWS": True,
    "LUCIA_SIGN_UP": True,  # False: no sign-up on any channel (form or JSON)
    "LUCIA_MAX_BODY_SIZE": 64 * 1024,  # bytes; larger bodies to the auth endpoints get 413
    # LUCIA_LOGIN_VIEW: "lucia.sign_in" while the form views are registered, else None.
    "LUCIA_PASSWORD_PROVIDER": "email",
    # None: [LUCIA_PASSWORD_PROVIDER]; e.g. ["email", "username"]: sign in by either.
    "LUCIA_PASSWORD_PROVIDERS": None,
    "LUCIA_IDENTIFIER_LABEL": None,  # None: "Email" for the email provider, else its name
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
    "LUCIA_SESSION_CACHE": False,  # keep validated sessions in process (DESIGN §24)
    "LUCIA_SESSION_CACHE_TTL": timedelta(seconds=30),  # the longest a kept session lives
    "LUCIA_PUBLIC_USER_COLUMNS": (),  # the browser sees user_id only; list what it may see
    "LUCIA_SIGN_UP_COLUMNS": (),  # sign-up sets no user column; list what it may set
    "LUCIA_GENERATE_USER_ID": None,
    "LUCIA_SIGN_OUT_REDIRECT": None,  # None: the sign-in page (the app's home without views)
    # Sign in with GitHub, Google or OpenID Connect (flask_lucia/oauth/, extra "oauth").
    "LUCIA_OAUTH_PROVIDERS": {},  # name -> {"client_id", "client_secret", ...}
    "LUCIA_OAUTH_LINK_VERIFIED_EMAIL": False,  # True: a verified email joins its account
    "LUCIA_OAUTH_TIMEOUT": timedelta(seconds=10),  # connect and read, per provider request
    # -- DESIGN §15: second factors and passkeys (pip install "flask-lucia[mfa]") ------------
    "LUCIA_TWO_FACTOR_COOKIE_NAME": "lucia_two_factor",  # the pending sign-in's cookie
    "LUCIA_TWO_FACTOR_TTL": timedelta(minutes=5),  # a pending sign-in's lifetime (at most 5 min)
    "LUCIA_ALLOW_SIGN_IN": None,  # a function of the user: False refuses its sign-in (a ban)
    "LUCIA_MFA_REQUIRED": False,  # True, or a function of the user: a second factor is a must
    "LUCIA_MFA_TRUST_FOR": timedelta(days=30),  # "trust this browser"; 0 or None: never offered
    "LUCIA_TOTP_ISSUER": None,  # shown by authenticator apps; None: the RP name, else the host
    "LUCIA_WEBAUTHN_RP_ID": None,  # None: the request's host name
    "LUCIA_WEBAUTHN_RP_NAME": None,  # None: the RP id
    "LUCIA_WEBAUTHN_ORIGIN": None,  # None: the request's origin; or one origin, or a list
    "LUCIA_WEBAUTHN_COOKIE_NAME": "lucia_webauthn",  # ties a passkey sign-in to its browser
    # TOTP secrets are stored encrypted (DESIGN §18) under these keys, newest first.
    "LUCIA_SECRET_KEYS": None,  # None: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS)
    # Email (DESIGN §13): verification, password reset, changes of password and address.
    "LUCIA_EMAIL_VERIFICATION": "optional",  # "off", "optional" or "required"
    "LUCIA_VERIFY_EMAIL_TTL": timedelta(days=1),  # how long a verification link works
    "LUCIA_RESET_TTL": timedelta(hours=1),  # how long a password reset link works
    "LUCIA_CHANGE_EMAIL_TTL": timedelta(hours=1),  # how long a link to a new address works
    "LUCIA_ACTIVITY_KEEP": timedelta(days=90),  # how long security events are kept
    "LUCIA_ACCOUNT_DELETION": True,  # False: no POST /auth/delete-account
    "LUCIA_EMAIL_CODE_SIGN_IN": False,  # True: sign in with a code sent by email (§23)
    "LUCIA_EMAIL_CODE_TTL": timedelta(minutes=10),  # how long a mailed sign-in code works
    # Without MAIL_SERVER, send_email or Flask-Mailman: print mails (links and all) to the
    # log? None: in debug or testing mode only; True: always (development machines only).
    "LUCIA_LOG_EMAILS": None,
    "LUCIA_MAIL_ADDRESS_PER_MINUTE": 1,  # mails to one address (per flow; None: no limit)
    "LUCIA_MAIL_ADDRESS_PER_HOUR": 10,
    "LUCIA_MAIL_CLIENT_PER_MINUTE": 5,  # mails asked for by one client address
    "LUCIA_MAIL_CLIENT_PER_HOUR": 50,
}

#: The values ``LUCIA_EMAIL_VERIFICATION`` may take.
EMAIL_VERIFICATION_MODES = ("off", "optional", "required")
#: The mail limits: key, whom it counts ("address" or "client") and its window in ms.
MAIL_LIMIT_KEYS = (
    ("LUCIA_MAIL_ADDRESS_PER_MINUTE", "address", 60_000),
    ("LUCIA_MAIL_ADDRESS_PER_HOUR", "address", 3_600_000),
    ("LUCIA_MAIL_CLIENT_PER_MINUTE", "client", 60_000),
    ("LUCIA_MAIL_CLIENT_PER_HOUR", "client", 3_600_000),
)


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
    #: Every provider a password signs in by, ``password_provider`` first.
    password_providers: tuple[str, ...]
    identifier_label: str
    identifier_max_length: int
    public_columns: tuple[str, ...]
    sign_up_columns: tuple[str, ...]
    sign_up: bool
    max_body_size: int | None
    touch_interval: int
    device_cookie: str | None
    device_max_age: int
    email_verification: str
    verify_email_ttl: int
    reset_ttl: int
    change_email_ttl: int
    account_deletion: bool
    email_code_sign_in: bool
    email_code_ttl: int
    #: ``(whom, most mails, window ms)`` for each mail limit that is set.
    mail_limits: tuple[tuple[str, int, int], ...]
    sign_out_redirect: str | None = None
    #: ``LUCIA_BASE_URL`` (or ``SERVER_NAME``'s); None: the request's host (``base_url``).
    base_url: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], columns: tuple[str, ...] = ()) -> Settings:
        """Parse and check the ``LUCIA_*`` keys of ``config`` (``columns``: the user columns)."""
        public = _columns(config, "LUCIA_PUBLIC_USER_COLUMNS", columns)
        sign_up = _columns(config, "LUCIA_SIGN_UP_COLUMNS", columns)
        access, refresh = _cookie_names(config)
        providers = password_providers(config)
        return cls(
            access_ttl=to_ms(config["LUCIA_ACCESS_TOKEN_TTL"], "LUCIA_ACCESS_TOKEN_TTL"),
            refresh_ttl=to_ms(config["LUCIA_REFRESH_TOKEN_TTL"], "LUCIA_REFRESH_TOKEN_TTL"),
            max_age=to_ms(config["LUCIA_SESSION_MAX_AGE"], "LUCIA_SESSION_MAX_AGE"),
            fresh_for=to_ms(config["LUCIA_FRESH_FOR"], "LUCIA_FRESH_FOR"),
            grace=to_ms(config["LUCIA_REFRESH_GRACE"], "LUCIA_REFRESH_GRACE"),
            access_cookie=access,
            refresh_cookie=refresh,
            cookie_secure=_cookie_secure(config, (access, refresh)),
            cookie_samesite=config["LUCIA_COOKIE_SAMESITE"],
            cookie_domain=config["LUCIA_COOKIE_DOMAIN"],
            cookie_path=config["LUCIA_COOKIE_PATH"],
            csrf=_flag(config, "LUCIA_CSRF_PROTECTION"),
            trusted_origins=trusted_origins(config["LUCIA_TRUSTED_ORIGINS"]),
            password_provider=providers[0],
            password_providers=providers,
            identifier_label=_identifier_label(config),
            identifier_max_length=int(config["LUCIA_IDENTIFIER_MAX_LENGTH"]),
            public_columns=public,
            sign_up_columns=sign_up,
            sign_up=_flag(config, "LUCIA_SIGN_UP"),
            max_body_size=_size(config, "LUCIA_MAX_BODY_SIZE"),
            touch_interval=to_ms(config["LUCIA_TOUCH_INTERVAL"], "LUCIA_TOUCH_INTERVAL"),
            device_cookie=_device_cookie(config, (access, refresh)),
            device_max_age=to_ms(
                config["LUCIA_DEVICE_COOKIE_MAX_AGE"], "LUCIA_DEVICE_COOKIE_MAX_AGE"
            ),
            sign_out_redirect=target(config, "LUCIA_SIGN_OUT_REDIRECT"),
            base_url=base_url(config),
            email_verification=email_verification(config),
            verify_email_ttl=to_ms(config["LUCIA_VERIFY_EMAIL_TTL"], "LUCIA_VERIFY_EMAIL_TTL"),
            reset_ttl=to_ms(config["LUCIA_RESET_TTL"], "LUCIA_RESET_TTL"),
            change_email_ttl=to_ms(config["LUCIA_CHANGE_EMAIL_TTL"], "LUCIA_CHANGE_EMAIL_TTL"),
            account_deletion=_flag(config, "LUCIA_ACCOUNT_DELETION"),
            email_code_sign_in=_flag(config, "LUCIA_EMAIL_CODE_SIGN_IN"),
            email_code_ttl=to_ms(config["LUCIA_EMAIL_CODE_TTL"], "LUCIA_EMAIL_CODE_TTL"),
            mail_limits=_mail_limits(config),
        )


def _columns(config: Mapping[str, Any], key: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """A list of user column names; None (which could be read as "all") and names that are
    not user columns are refused."""
    value = config[key]
    if value is None:
        raise TypeError(f"{key} must list user column names, not None (an empty list for none)")
    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise ValueError(f"{key}: {', '.join(map(str, unknown))} not among the user columns")
    return names


def _cookie_names(config: Mapping[str, Any]) -> tuple[str, str]:
    """The access and refresh cookie names, ``__Host-`` prefixed while
    ``LUCIA_COOKIE_HOST_PREFIX`` is on (a name that has the prefix keeps it once)."""
    on = _flag(config, "LUCIA_COOKIE_HOST_PREFIX")

    def named(key: str) -> str:
        name: str = config[key]
        return HOST_PREFIX + name if on and not name.lower().startswith("__host-") else name

    return named("LUCIA_ACCESS_COOKIE_NAME"), named("LUCIA_REFRESH_COOKIE_NAME")


def _cookie_secure(config: Mapping[str, Any], names: tuple[str, str]) -> bool | None:
    """``LUCIA_COOKIE_SECURE``, checked against prefixed cookie names, which browsers keep
    only when Secure (and, for ``__Host-``, host-only at ``Path=/``); with them, None
    means always Secure."""
    secure: bool | None = config["LUCIA_COOKIE_SECURE"]
    lowered = [name.lower() for name in names]
    host = any(name.startswith("__host-") for name in lowered)
    if not host and not any(name.startswith("__secure-") for name in lowered):
        return secure
    wrong = ["LUCIA_COOKIE_SECURE is False"] if secure is False else []
    if host and config["LUCIA_COOKIE_DOMAIN"] is not None:
        wrong.append("LUCIA_COOKIE_DOMAIN is set")
    if host and config["LUCIA_COOKIE_PATH"] != "/":
        wrong.append("LUCIA_COOKIE_PATH is not '/'")
    if wrong:
        raise ValueError(
            f"cookies {names[0]} and {names[1]} would be dropped by browsers: "
            f"{' and '.join(wrong)} (see LUCIA_COOKIE_HOST_PREFIX)"
        )
    return True


def _identifier_label(config: Mapping[str, Any]) -> str:
    """``LUCIA_IDENTIFIER_LABEL``, or by default one named after the password provider:
    "Email" for ``email``, "Username" for ``username``."""
    label = config["LUCIA_IDENTIFIER_LABEL"]
    if label is None:
        provider = config["LUCIA_PASSWORD_PROVIDER"]
        if not isinstance(provider, str):
            raise TypeError(f"LUCIA_PASSWORD_PROVIDER must be a str, not {provider!r}")
        words = [p.replace("_", " ").lower() for p in password_providers(config)]
        return " or ".join(words).capitalize()
    if not isinstance(label, str):
        raise TypeError(f"LUCIA_IDENTIFIER_LABEL must be a str or None, not {label!r}")
    if not label.strip():
        raise ValueError("LUCIA_IDENTIFIER_LABEL must not be empty")
    return label


def _device_cookie(config: Mapping[str, Any], tokens: tuple[str, str]) -> str | None:
    """``LUCIA_DEVICE_COOKIE_NAME``: a cookie name of its own (``__Host-`` prefixed as the
    token cookies are), or None (device cookies off)."""
    name = config["LUCIA_DEVICE_COOKIE_NAME"]
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ValueError("LUCIA_DEVICE_COOKIE_NAME must be a cookie name, or None to turn it off")
    if config["LUCIA_COOKIE_HOST_PREFIX"] and not name.lower().startswith("__host-"):
        name = HOST_PREFIX + name
    if name in tokens:
        raise ValueError("LUCIA_DEVICE_COOKIE_NAME must differ from the token cookies' names")
    return name


def _flag(config: Mapping[str, Any], key: str) -> bool:
    """A boolean key; a string such as "false" is refused rather than read as True."""
    value = config[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be True or False, not {value!r}")
    return value


def _size(config: Mapping[str, Any], key: str) -> int | None:
    """A size in bytes (a positive int), or None for no limit."""
    value = config[key]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key} must be a number of bytes or None, not {value!r}")
    if value < 1:
        raise ValueError(f"{key} must be at least 1 byte")
    return value


def email_verification(config: Mapping[str, Any]) -> str:
    """``LUCIA_EMAIL_VERIFICATION``: "off", "optional" or "required"."""
    value = config["LUCIA_EMAIL_VERIFICATION"]
    if value not in EMAIL_VERIFICATION_MODES:
        raise ValueError(
            f"LUCIA_EMAIL_VERIFICATION must be one of {', '.join(EMAIL_VERIFICATION_MODES)}, "
            f"not {value!r}"
        )
    return str(value)


def _mail_limits(config: Mapping[str, Any]) -> tuple[tuple[str, int, int], ...]:
    """The mail limits that are set: each a number of mails (at least 1) or None."""
    limits = []
    for key, whom, window in MAIL_LIMIT_KEYS:
        value = config[key]
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{key} must be a number of mails or None, not {value!r}")
        if value < 1:
            raise ValueError(f"{key} must be at least 1 (None for no limit)")
        limits.append((whom, value, window))
    return tuple(limits)
