"""The ``flask lucia`` command group every part adds its commands to (the core's in
``flask_lucia.cli``, a feature's in its own ``commands`` module), and what the commands
share: failures as click errors, finding a user, printing a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from flask_lucia.core.auth import Auth
from flask_lucia.errors import LuciaError

lucia_cli = AppGroup("lucia", help="Manage flask-lucia users, sessions and tables.")


@contextmanager
def failures() -> Iterator[None]:
    """Turn library and database errors into a ``ClickException`` with their message."""
    try:
        yield
    except LuciaError as error:
        raise click.ClickException(error.message) from error
    except (ValueError, TypeError) as error:
        raise click.ClickException(str(error)) from error
    except sa.exc.DBAPIError as error:  # never str(error): it carries the SQL parameters
        raise click.ClickException(f"database error: {error.orig}") from error
    except sa.exc.SQLAlchemyError as error:
        raise click.ClickException(f"database error: {type(error).__name__}") from error


def find_user(auth: Auth, value: str) -> Any:
    """The user with this id, else the one keyed by ``provider:identifier``, else by
    ``LUCIA_PASSWORD_PROVIDER:value`` (a bare email). A bare email found is reported on
    stderr with the provider id it stands for; a miss names every id looked for."""
    try:
        return auth.get_user(value)
    except LuciaError as error:
        if error.code != "AUTH_INVALID_USER_ID":
            raise
    except ValueError:  # empty or too long to be an id; maybe a provider id
        pass
    provider, colon, identifier = value.partition(":")
    bare = auth.settings.password_provider
    candidates = [(provider, identifier)] if colon else []
    if not value.startswith(bare + ":"):
        candidates.append((bare, value))
    tried: list[str] = []
    for provider, identifier in candidates:
        try:
            key = auth.provider_id(provider, identifier)
            tried.append(key)
            user = auth.get_user_by_provider_id(provider, identifier)
        except LuciaError as error:
            if error.code != "AUTH_INVALID_PROVIDER_ID":
                raise
        except ValueError:  # not a well-formed provider id
            pass
        else:
            if provider == bare and identifier == value:
                click.echo(f"user {auth.users.id_of(user)} ({key})", err=True)
            return user
    looked_for = "".join(f" or provider id {key!r}" for key in tried)
    raise click.ClickException(f"no user with id {value!r}{looked_for}")


def when(moment: datetime | None) -> str:
    """A UTC time to the second, ``-`` for none."""
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
