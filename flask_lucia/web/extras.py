"""Features that need an optional extra (``pip install "flask-lucia[mfa]"``): offered only
when it is installed.

A feature whose extra is missing is not offered (``lucia_offers("passkeys")`` is false in
templates, so pages hide its links and buttons), and its endpoints answer 404 with a
message that names the extra (JSON for scripts, a page for browsers) instead of a 500.
A configuration that asks for such a feature stops ``init_app`` (the feature says so).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, Response, current_app, request

from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.web.pages import error_page

#: ``app.extensions`` key: feature name -> what is missing, for the features not offered.
_MISSING = "lucia_missing_extras"


@dataclass(frozen=True)
class Missing:
    """A feature not offered: the endpoints it would serve, the words that say why (a
    message id with ``%(install)s``, translated when shown) and the line that installs it."""

    endpoints: tuple[str, ...]
    message: str
    install: str


def installed(modules: Iterable[str]) -> bool:
    """Whether every module imports (an extra's packages); a broken install counts as
    missing too."""
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def not_offered(
    app: Flask, feature: str, endpoints: Iterable[str], message: str, install: str
) -> None:
    """Record at ``init_app`` that ``feature`` is not offered: its ``endpoints`` (names on
    the ``lucia`` blueprint, without the prefix) answer ``message`` (marked with ``N_``,
    naming ``%(install)s``) with a 404, in the request's language."""
    missing: dict[str, Missing] = app.extensions.setdefault(_MISSING, {})
    missing[feature] = Missing(tuple(f"lucia.{e}" for e in endpoints), message, install)


def lucia_offers(feature: str) -> bool:
    """Template global: whether this app offers ``feature`` ("two_factor", "passkeys"):
    its extra is installed. A page links to the feature only when it is."""
    return feature not in current_app.extensions.get(_MISSING, {})


def refuse_missing() -> Response | None:
    """``before_request`` of the blueprint: a feature's endpoint whose extra is missing
    answers 404 with the message naming the extra, never a 500 deep in the view."""
    missing: dict[str, Missing] = current_app.extensions.get(_MISSING, {})
    for feature in missing.values():
        if request.endpoint in feature.endpoints:
            message = gettext(feature.message, install=feature.install)
            return error_page(LuciaError("AUTH_INVALID_REQUEST", message), 404)
    return None
