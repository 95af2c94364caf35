"""The app's own user table at ``init_app``: a Flask-SQLAlchemy or plain declarative model,
or a ``Table``; the metadata flask-lucia's tables join; and the checks that turn a setup
that cannot work into a start-up error rather than a failure in front of a person.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from flask_lucia.config import Settings, to_ms
from flask_lucia.core.store.engine import create_engine
from flask_lucia.core.store.schema import Tables


def engine_factory(app: Flask, db: Any) -> Callable[[], Engine]:
    """How this app gets its engine: Flask-SQLAlchemy's, the URL's, or instance SQLite."""
    if db is not None:
        return lambda: db.engine
    url = app.config["LUCIA_DATABASE_URL"]
    options = dict(app.config["LUCIA_ENGINE_OPTIONS"])
    timeout = to_ms(app.config["LUCIA_DATABASE_TIMEOUT"], "LUCIA_DATABASE_TIMEOUT") / 1000
    instance = app.instance_path

    def make() -> Engine:
        target = url
        if target is None:
            os.makedirs(instance, exist_ok=True)
            target = "sqlite:///" + os.path.join(instance, "lucia.sqlite3")
        return create_engine(target, options, timeout)

    return make


def user_table(user_model: Any) -> sa.Table:
    """The table of ``user_model``: a mapped class (Flask-SQLAlchemy or plain declarative)
    or a ``Table`` itself."""
    if isinstance(user_model, sa.Table):
        return user_model
    table = getattr(user_model, "__table__", None)
    if not isinstance(table, sa.Table):
        raise TypeError(f"user_model {user_model!r} is not a mapped model or a Table")
    return table


def table_metadata(db: Any, table: sa.Table | None) -> sa.MetaData:
    """Where flask-lucia's tables go: Flask-SQLAlchemy's metadata (so ``db.create_all()``
    and Alembic see them), else the user table's own (its foreign keys resolve and
    ``create_all`` orders them), else a metadata of their own."""
    if db is not None:
        metadata: sa.MetaData = db.metadata
        return metadata
    return table.metadata if table is not None else sa.MetaData()


def warn_on_ignored_url(app: Flask, db: Any) -> None:
    """``LUCIA_DATABASE_URL`` means nothing with ``db=`` (its engine is the app's): say so,
    rather than let tests that set it write into the development database."""
    if db is not None and app.config.get("LUCIA_DATABASE_URL") is not None:
        warnings.warn(
            "LUCIA_DATABASE_URL is ignored with Lucia(db=db): flask-lucia uses db's engine, "
            "so set SQLALCHEMY_DATABASE_URI instead",
            UserWarning,
            stacklevel=3,
        )


def check_sign_up_columns(
    settings: Settings, tables: Tables, identifier_columns: Mapping[str, str]
) -> None:
    """Refuse a setup whose built-in sign-up can create nobody: a user column that needs a
    value and that neither ``LUCIA_SIGN_UP_COLUMNS`` nor ``identifier_columns`` fills.
    ``identifier_columns`` must name user columns."""
    names = {column.name for column in tables.user_data_columns}
    for provider, name in identifier_columns.items():
        if name not in names:
            raise ValueError(
                f"identifier_columns[{provider!r}]: {name!r} is not a column of the user table"
            )
    if not settings.sign_up:
        return
    from_keys = {
        identifier_columns[p] for p in settings.password_providers if p in identifier_columns
    }
    filled = set(settings.sign_up_columns) | from_keys
    for column in tables.user_data_columns:
        needed = not column.nullable and column.default is None
        if needed and column.server_default is None and column.name not in filled:
            raise ValueError(
                f"the user column {column.name!r} needs a value and sign-up cannot give it: "
                f"add it to LUCIA_SIGN_UP_COLUMNS, fill it from an identifier "
                f"(identifier_columns={{'<provider>': {column.name!r}}}), give it a default, "
                "or close sign-up (LUCIA_SIGN_UP = False)"
            )
