"""``current_user`` and ``current_session``: this request's user (or anonymous) and session."""

from __future__ import annotations

from typing import Any, cast

from flask import current_app, g, has_app_context
from werkzeug.local import LocalProxy

from .types import ANONYMOUS, AnonymousUser, Session, User


def _user() -> User | AnonymousUser:
    if has_app_context():
        user: User | None = g.get("_lucia_user")
        if user is not None:
            return user
    return ANONYMOUS


def _session() -> Session | None:
    return g.get("_lucia_session") if has_app_context() else None


def _attached(user: Any) -> Any:
    """This request's user of the app's model, put in ``db.session`` on first need."""
    attached = current_app.extensions["lucia"].users.attach(user)
    g._lucia_user = attached
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
