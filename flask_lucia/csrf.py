"""The Origin / Referer check that guards cookie-authenticated unsafe requests."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL in lower case, or None when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


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
    return seen is not None and (seen == own_origin.lower() or seen in trusted)
