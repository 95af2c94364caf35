"""``lucia_script()``: the page's initial session for the browser module, and its tag."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from flask.json import dumps
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from flask_lucia.types import Session
from flask_lucia.web.base import state
from flask_lucia.web.proxies import request_state


def session_body(user: Any, session: Session) -> dict[str, Any]:
    """What the browser knows of a session: the public user, expiry, checksum, and how it
    was made (``amr``, ``aal``: DESIGN §19); no token."""
    auth = state()
    return {
        "user": auth.users.public(user, auth.settings.public_columns),
        "session": {
            "expires": session.expires_ms,
            "checksum": session.checksum,
            "amr": list(session.amr),
            "aal": session.aal,
        },
    }


def page_data() -> dict[str, Any]:
    """This request's session as page data, and Flask-WTF's CSRF token when the app uses it."""
    user, session = request_state.get("_lucia_user"), request_state.get("_lucia_session")
    data: dict[str, Any] = {"user": None, "session": None, "csrfToken": None}
    if user is not None and session is not None:
        data.update(session_body(user, session))
    if "csrf" in current_app.extensions:  # CSRFProtect: every POST the module makes needs it
        from flask_wtf.csrf import generate_csrf

        data["csrfToken"] = generate_csrf()
    return data


def lucia_script() -> Markup:
    """The page data and a ``<script type="module">`` that loads ``lucia.js`` with it."""
    data = htmlsafe_json_dumps(page_data(), dumps=dumps)
    src = url_for("lucia.script")
    return Markup(
        f'<script type="application/json" id="lucia-page-data">{data}</script>\n'
        f'<script type="module" src="{src}"></script>'
    )
