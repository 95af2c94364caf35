"""``current_user`` and ``current_session``: this request's user (or anonymous) and session."""

from __future__ import annotations

from typing import cast

from flask import g, has_app_context
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


#: The signed-in ``User``, or a falsy ``AnonymousUser``.
current_user = cast(User | AnonymousUser, LocalProxy(_user))
#: The request's ``Session``, or None.
current_session = cast(Session | None, LocalProxy(_session))
