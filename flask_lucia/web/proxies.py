"""``current_user`` and ``current_session``: this request's user (or anonymous) and session.

They live in ``request_state``, a namespace of the request itself, never on ``g``: Flask
reuses an app context (and its ``g``) for every request made inside it, as test suites
that hold one open do, and a user kept there would outlive its request.
"""

from __future__ import annotations

from typing import Any, cast

from flask import current_app, has_request_context, request
from flask.ctx import _AppCtxGlobals
from werkzeug.local import LocalProxy

from flask_lucia.types import ANONYMOUS, AnonymousUser, Session, User


def local() -> _AppCtxGlobals:
    """This request's namespace (``get``, ``pop``, attributes, ``in``), made on first use."""
    found: dict[str, Any] = cast(Any, request)._get_current_object().__dict__
    state: _AppCtxGlobals | None = found.get("_lucia_state")
    if state is None:
        state = found["_lucia_state"] = _AppCtxGlobals()
    return state


#: flask-lucia's state of the current request: ``_lucia_user``, ``_lucia_session``,
#: ``_lucia_cookies`` (``Set-Cookie`` values the response must carry), and the like.
request_state = cast(_AppCtxGlobals, LocalProxy(local))


def _user() -> User | AnonymousUser:
    if has_request_context():
        user: User | None = local().get("_lucia_user")
        if user is not None:
            return user
    return ANONYMOUS


def _session() -> Session | None:
    return local().get("_lucia_session") if has_request_context() else None


def _attached(user: Any) -> Any:
    """This request's user of the app's model, put in ``db.session`` on first need."""
    attached = current_app.extensions["lucia"].users.attach(user)
    request_state._lucia_user = attached
    return attached


class _UserProxy(LocalProxy):  # type: ignore[type-arg]
    """``current_user``: reads of loaded columns go straight to the user; anything else (a
    relationship, a deferred column) or a change first puts a model instance in the app's
    session, so a request that only reads columns opens no ORM session."""

    def __getattr__(self, name: str) -> Any:
        user = self._get_current_object()
        if user.__class__ is not User and user is not ANONYMOUS and name not in user.__dict__:
            user = _attached(user)
        return getattr(user, name)

    def __setattr__(self, name: str, value: Any) -> None:
        user = self._get_current_object()
        if user.__class__ is not User and user is not ANONYMOUS:
            user = _attached(user)
        setattr(user, name, value)


#: The signed-in user (a ``User``, or the app's ``user_model``), or a falsy ``AnonymousUser``.
current_user = cast(User | AnonymousUser, _UserProxy(_user))
#: The request's ``Session``, or None.
current_session = cast(Session | None, LocalProxy(_session))
