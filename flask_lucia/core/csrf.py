"""The Origin / Referer check that guards cookie-authenticated unsafe requests."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, default port dropped; None if none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if not scheme or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def origin_allowed(
    own_origin: str,
    origin: str | None,
    referer: str | None,
    trusted: Collection[str],
    *,
    required: bool = True,
) -> bool:
    """True when Origin (or, without it, Referer) is this site or a trusted one.

    With ``required=False`` a request carrying neither header passes: that is a
    non-browser client, which a cross-site page cannot impersonate.
    """
    claimed = origin if origin is not None else referer
    if claimed is None:
        return not required
    seen = origin_of(claimed) if claimed != "null" else None
    return seen is not None and (seen == origin_of(own_origin) or seen in trusted)
