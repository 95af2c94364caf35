"""What a user is to the app: the built-in ``User`` value, or an instance of its own model.

``Users`` turns a row of user fields into that value without another query, checks user
ids against the primary key's type, and reads an id back from a user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import attributes, make_transient_to_detached

from flask_lucia.types import User


class Users:
    """Builds and recognises the users of one app (``model``: the app's mapped class)."""

    def __init__(
        self,
        pk: sa.Column[Any],
        column_names: Sequence[str],
        model: type[Any] | None = None,
        db: Any = None,
    ) -> None:
        self.pk = pk
        self.column_names = tuple(column_names)
        self.model = model
        self._db = db
        self.id_type: type = str
        with contextlib.suppress(NotImplementedError):
            self.id_type = pk.type.python_type
        #: Whether the database numbers new users itself (an integer primary key).
        self.numbered = isinstance(pk.type, sa.Integer) and pk.autoincrement in ("auto", True)
        if model is not None:
            mapper = sa.inspect(model)
            self._mapper = mapper
            self._attributes = [
                mapper.get_property_by_column(column).key
                for column in (pk, *(pk.table.c[n] for n in column_names))
            ]
            self._id_attribute = self._attributes[0]
            self._configured = False

    def build(self, row: Sequence[Any], start: int = 0, *, attach: bool = True) -> Any:
        """The user of a row of ``Storage.user_fields`` beginning at ``start``; a model
        instance is put in the app's session unless ``attach`` is False (see ``attach``)."""
        if self.model is None:
            values = tuple(row[start:])
            data = dict(zip(self.column_names, values[2:], strict=False))
            return User(values[0], values[1], MappingProxyType(data))
        instance = self._instance(row[start : start + len(self._attributes)])
        return self.attach(instance) if attach else instance

    def _instance(self, values: Sequence[Any]) -> Any:
        """An instance of the model made from loaded values (no query), whose columns read
        without a session; ``attach`` gives it its identity and a session when needed."""
        if not self._configured:  # relationships are set up on first use, as the ORM does
            self._mapper.registry.configure(cascade=True)
            self._configured = True
        instance = self._mapper.class_manager.new_instance()
        for name, value in zip(self._attributes, values, strict=True):
            attributes.set_committed_value(instance, name, value)
        return instance

    def attach(self, user: Any) -> Any:
        """``user`` in the app's ``db.session``, so relationships load and changes are
        flushed; the session's own copy if it holds one. Built-in users, and a plain
        declarative model's (no Flask-SQLAlchemy: no session to join), pass through.

        The request hook leaves this to the first use that needs it (``current_user``'s
        relationships or a change): a request that only reads columns opens no ORM session.
        """
        if self.model is None or self._db is None or not isinstance(user, self.model):
            return user  # without Flask-SQLAlchemy there is no session to join
        state = sa.inspect(user)
        if state.session_id is not None:
            return user
        if state.key is None:  # built from a row: it was loaded, so give it its identity
            make_transient_to_detached(user)
        session = self._db.session
        existing = session.identity_map.get(state.key)
        if existing is not None:
            return existing
        session.add(user)
        return user

    def is_user(self, value: object) -> bool:
        """Whether ``value`` is a user of this app (rather than a user id)."""
        return isinstance(value, self.model if self.model is not None else User)

    def id_of(self, user: Any) -> Any:
        """The user id of a user of this app."""
        if self.model is None:
            return user.user_id
        return getattr(user, self._id_attribute)

    def check_id(self, value: object, name: str = "user_id") -> Any:
        """``value`` as a user id of the primary key's type; wrong types and empty or
        oversized strings are refused (a digit string is taken for an integer id)."""
        if self.id_type is int:
            if isinstance(value, str) and value.isascii() and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            return value
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
        if not value:
            raise ValueError(f"{name} must not be empty")
        if len(value) > 255:
            raise ValueError(f"{name} must be at most 255 characters")
        return value

    def public(self, user: Any, columns: tuple[str, ...] | None) -> dict[str, Any]:
        """What the browser may see of a user: its id and the listed columns."""
        if self.model is None:
            shown: Mapping[str, Any] = user.public(columns)
            return dict(shown)
        names = self.column_names if columns is None else columns
        values = {
            name: getattr(user, self._attributes[1 + self.column_names.index(name)])
            for name in names
        }
        return {"user_id": self.id_of(user), **values}
