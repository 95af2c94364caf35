"""Redirect safety: follow a ``next`` or ``redirect`` target only when it stays on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import has_request_context, request

from flask_lucia.core.csrf import origin_of

#: Longest target followed; longer ones are refused rather than parsed.
MAX_TARGET_LENGTH = 2048


def same_site_path(target: object, own_origin: str | None) -> str | None:
    """``target`` as a path on the site at ``own_origin`` (``scheme://host[:port]``), else
    None. A full URL counts only with that origin; with ``own_origin`` None, only paths."""
    if not isinstance(target, str) or not target or len(target) > MAX_TARGET_LENGTH:
        return None
    if any(ord(c) < 32 or c == "\\" for c in target):  # browsers drop or flip these
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        if own_origin is None or origin_of(target) != origin_of(own_origin):
            return None
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
    return target if target.startswith("/") and not target.startswith("//") else None


def safe_next_url(target: object) -> str | None:
    """A same-origin path to redirect to, or None (no open redirects).

    ``target`` is what a request asked for (``request.args.get("next")``): a path such as
    ``/dashboard?tab=2`` is kept; a full URL only when it names this request's own origin
    (then its path is returned); anything else (another site, ``//host``, a scheme such
    as ``javascript:``, a backslash or control character, not a str) gives None. Outside
    a request only paths are kept.
    """
    own = request.host_url if has_request_context() else None
    return same_site_path(target, own)
