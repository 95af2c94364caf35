"""Absolute links (mail links, the OAuth callback, WebAuthn and TOTP defaults): where the
app lives comes from configuration, never from the request's ``Host`` (DESIGN §18).

``Settings.base_url`` is ``LUCIA_BASE_URL``, else ``SERVER_NAME`` with
``PREFERRED_URL_SCHEME`` and ``APPLICATION_ROOT``; None only where the request's host may
be used: under Flask's ``TRUSTED_HOSTS`` (checked here too) or in debug and testing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request, url_for
from werkzeug.sansio.utils import host_is_trusted

from flask_lucia.errors import LuciaError


def _base_url() -> str | None:
    base: str | None = current_app.extensions["lucia"].settings.base_url
    return base


def base_url() -> str:
    """Where the app lives (``https://app.example`` or with a path), without a trailing
    slash: the configured one, else the request's host where it may be trusted."""
    base = _base_url()
    if base is not None:
        return base
    return request_root()


def request_root() -> str:
    """The request's own root URL, refused when ``TRUSTED_HOSTS`` does not list its host
    (Werkzeug refuses it too from Flask 3.1; older ones only store the setting)."""
    if not has_request_context():
        raise RuntimeError(
            "an absolute link needs LUCIA_BASE_URL (or SERVER_NAME) outside a request"
        )
    trusted = current_app.config.get("TRUSTED_HOSTS")
    if trusted and not host_is_trusted(request.host, trusted):
        raise LuciaError("AUTH_INVALID_REQUEST", "This host is not trusted.")
    return request.host_url.rstrip("/")


def external_url(endpoint: str, **values: Any) -> str:
    """``url_for(endpoint, **values)`` as an absolute URL under ``base_url()``."""
    base = _base_url()
    if base is None:  # debug, testing or TRUSTED_HOSTS: the request's host, once checked
        if has_request_context():
            request_root()  # refuses an untrusted host
        return url_for(endpoint, _external=True, **values)  # else SERVER_NAME, as Flask does
    parts = urlsplit(base)
    current_app.inject_url_defaults(endpoint, values)
    adapter = current_app.url_map.bind(
        parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def origin() -> str:
    """The origin (``scheme://host[:port]``) of ``base_url()``."""
    parts = urlsplit(base_url())
    return f"{parts.scheme}://{parts.netloc}"


def hostname() -> str:
    """The host name of ``base_url()`` (the WebAuthn RP ID and TOTP issuer default)."""
    return urlsplit(base_url()).hostname or "localhost"
