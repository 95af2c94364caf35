"""Helpers for testing apps that use flask-lucia: sign a test client in with one line."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from .auth import Auth
from .types import Session


def sign_in_client(
    client: FlaskClient, user: Any, *, fresh: bool = True, mfa: bool = False
) -> Session:
    """Give ``client`` a new session for ``user`` (a ``User`` or a user id); returns it.

    The client then carries the auth cookies, and sends its own site's ``Origin``
    so its POSTs pass the CSRF check as a browser's would. ``mfa``: the session counts
    as signed in with a second factor (for ``mfa_required`` views).
    """
    app = client.application
    with app.app_context():
        auth: Auth = app.extensions["lucia"]
        user_id = auth.users.id_of(user) if auth.users.is_user(user) else user
        session, tokens = auth.create_session(user_id, fresh=fresh, mfa=mfa)
        settings = auth.settings
    domain = settings.cookie_domain or app.config.get("SERVER_NAME") or "localhost"
    for name, value in (
        (settings.access_cookie, tokens.access_token),
        (settings.refresh_cookie, tokens.refresh_token),
    ):
        client.set_cookie(name, value, domain=domain, path=settings.cookie_path)
    scheme = app.config.get("PREFERRED_URL_SCHEME", "http")
    client.environ_base.setdefault("HTTP_ORIGIN", f"{scheme}://{domain}")
    return session
