"""The seed API (Lucia's, in Python names) over storage, tokens and passwords.

One ``Auth`` per app lives in ``app.extensions["lucia"]``; the ``Lucia`` object
delegates to the current app's. Every failure is a ``LuciaError``; wrong types
and malformed values are ``TypeError``/``ValueError`` raised before any write.

Its parts: ``base`` (settings, storage, registration points), ``accounts`` (users and
keys), ``sessions``, ``refresh``.
"""

from __future__ import annotations

from flask_lucia.core.accounts import AccountApi
from flask_lucia.core.refresh import RefreshApi
from flask_lucia.core.sessions import SessionApi


class Auth(AccountApi, SessionApi, RefreshApi):
    """One app's authentication: settings, storage and hasher, and the seed API on them."""
