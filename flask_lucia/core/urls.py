"""Where the app lives and where it may send browsers, parsed from configuration
(DESIGN §18): links and origins come from settings, never from a request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask_lucia.core.csrf import origin_of


def base_url(config: Mapping[str, Any]) -> str | None:
    """Where the app lives, for the links flask-lucia builds (DESIGN §18): ``LUCIA_BASE_URL``,
    else ``SERVER_NAME`` with ``PREFERRED_URL_SCHEME`` and ``APPLICATION_ROOT``. None means
    the request's host, allowed only where it can be trusted: with Flask's ``TRUSTED_HOSTS``
    (Werkzeug refuses other hosts) or in debug and testing. Anything else is refused, since
    a link built from a ``Host`` header can be pointed at an attacker's site."""
    value = config.get("LUCIA_BASE_URL")
    if value is not None:
        if not isinstance(value, str):
            raise TypeError(
                f"LUCIA_BASE_URL must be a str such as 'https://app.example', not {value!r}"
            )
        parts = urlsplit(value.strip())
        wrong = (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or bool(parts.query or parts.fragment or parts.username or parts.password)
        )
        if wrong:
            raise ValueError(
                f"LUCIA_BASE_URL: {value!r} is not a URL such as 'https://app.example' "
                "(http or https, a host, an optional path, no query)"
            )
        return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
    server = config.get("SERVER_NAME")
    if server:
        scheme = config.get("PREFERRED_URL_SCHEME") or "http"
        root = str(config.get("APPLICATION_ROOT") or "/").rstrip("/")
        return f"{scheme}://{server}{root}"
    if config.get("TRUSTED_HOSTS") or config.get("DEBUG") or config.get("TESTING"):
        return None
    raise ValueError(
        "set LUCIA_BASE_URL to where the app lives (e.g. 'https://app.example'): links in "
        "mails are built from it, never from the request's Host header. Alternatives: "
        "SERVER_NAME (with PREFERRED_URL_SCHEME), or Flask's TRUSTED_HOSTS to build them "
        "from the request's host"
    )


def target(config: Mapping[str, Any], key: str) -> str | None:
    """Where to send a browser: a path on this site (``/bye``), an ``http(s)`` URL, or None."""
    value = config[key]
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a path such as '/bye' or None, not {value!r}")
    path = value.startswith("/") and not value.startswith("//")
    if not path and origin_of(value) is None:
        raise ValueError(f"{key} must be a path such as '/bye' or an http(s) URL, not {value!r}")
    return value


def trusted_origins(value: object) -> frozenset[str]:
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
