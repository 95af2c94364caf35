"""Helpers for testing apps that use flask-lucia: a test client that acts like a same-site
browser (``LuciaClient``), and one line to sign a client in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

from flask_lucia.core.auth import Auth
from flask_lucia.core.csrf import SAFE_METHODS
from flask_lucia.types import Session

__all__ = ["LuciaClient", "sign_in_client"]


class LuciaClient(FlaskClient):
    """A test client that sends its app's own ``Origin`` on unsafe requests, as a browser on
    the same site does, and can sign itself in (``client.sign_in(user)``).

    Use it with ``app.test_client_class = LuciaClient``. A request that names its own
    ``Origin`` or ``Referer`` (``headers={"Origin": "https://evil.example"}``) is sent as
    given, so tests of the CSRF check still see what they ask for.
    """

    def sign_in(
        self, user: Any, *, fresh: bool = True, remember: bool = True, mfa: bool = False
    ) -> Session:
        """Give this client a new session for ``user`` (a ``User``, an instance of the app's
        ``user_model``, or a user id) without a password; returns the session. ``mfa``: it
        counts as signed in with a second factor (for ``mfa_required`` views)."""
        return _give_session(self, user, fresh=fresh, remember=remember, mfa=mfa)

    def run_wsgi_app(
        self, environ: dict[str, Any], *args: Any, **kwargs: Any
    ) -> tuple[Iterable[bytes], str, Headers]:
        """Add ``Origin`` to an unsafe request that has neither it nor ``Referer``, from the
        request's own scheme and host; also for requests replayed by ``follow_redirects``."""
        if environ.get("REQUEST_METHOD", "GET").upper() not in SAFE_METHODS and not (
            "HTTP_ORIGIN" in environ or "HTTP_REFERER" in environ
        ):
            environ["HTTP_ORIGIN"] = _origin(environ)
        return super().run_wsgi_app(environ, *args, **kwargs)


def _origin(environ: dict[str, Any]) -> str:
    """``scheme://host[:port]`` of a WSGI request, as a browser would send it."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "localhost")
        port = str(environ.get("SERVER_PORT", ""))
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _give_session(
    client: FlaskClient, user: Any, *, fresh: bool, remember: bool, mfa: bool = False
) -> Session:
    """Create a session for ``user`` and put its tokens in ``client``'s cookie jar."""
    app = client.application
    with app.app_context():
        auth: Auth = app.extensions["lucia"]
        session, tokens = auth.create_session(
            _user_id(auth, user), fresh=fresh, remember=remember, mfa=mfa
        )
        settings = auth.settings
    domain = _cookie_domain(client, settings.cookie_domain)
    for name, value in (
        (settings.access_cookie, tokens.access_token),
        (settings.refresh_cookie, tokens.refresh_token),
    ):
        client.set_cookie(name, value, domain=domain, path=settings.cookie_path)
    return session


def _user_id(auth: Auth, user: Any) -> Any:
    """The id of a user, or ``user`` itself when it is an id. A model instance that a test
    made in an app context that has ended (expired and detached) still knows its id."""
    if not auth.users.is_user(user):
        return user
    if auth.users.model is not None:
        identity = sa.inspect(user).identity
        if identity is not None:
            return identity[0]
    return auth.users.id_of(user)


def _cookie_domain(client: FlaskClient, configured: str | None) -> str:
    return configured or client.application.config.get("SERVER_NAME") or "localhost"


def sign_in_client(
    client: FlaskClient, user: Any, *, fresh: bool = True, mfa: bool = False
) -> Session:
    """Give ``client`` a new session for ``user`` (a ``User``, an instance of the app's
    ``user_model``, or a user id); returns it.

    The client then carries the auth cookies, and sends its own site's ``Origin``
    so its POSTs pass the CSRF check as a browser's would. With a ``LuciaClient``,
    ``client.sign_in(user)`` does the same. ``mfa``: the session counts as signed in with a
    second factor.
    """
    session = _give_session(client, user, fresh=fresh, remember=True, mfa=mfa)
    app = client.application
    domain = _cookie_domain(client, app.extensions["lucia"].settings.cookie_domain)
    scheme = app.config.get("PREFERRED_URL_SCHEME", "http")
    client.environ_base.setdefault("HTTP_ORIGIN", f"{scheme}://{domain}")
    return session
