"""``flask lucia ...``: the core's commands: create and upgrade tables, manage users and
sessions, remove expired rows (features add theirs from their ``commands`` modules).

Every command acts on the app's ``Auth`` (``app.extensions["lucia"]``). Failures
are ``click`` errors with a message (exit 1; bad arguments exit 2), never a
traceback. Passwords are only ever read from a hidden, confirmed prompt.
"""

from __future__ import annotations

import json
from typing import Any

import click
import sqlalchemy as sa

from flask_lucia.core.auth import Auth
from flask_lucia.core.store.schema import SCHEMA_VERSION
from flask_lucia.core.store.sessions import MAX_BATCH
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session
from flask_lucia.web.base import state
from flask_lucia.web.commands import failures, find_user, lucia_cli, when

_TRUE = frozenset({"1", "true", "yes", "y", "on", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "off", "f"})


def _prompt_password() -> str:
    """A new password from a hidden prompt, typed twice."""
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _convert(column: sa.Column[Any], key: str, raw: str) -> Any:
    """``raw`` as the column's Python type where that is int, bool or float."""
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return raw
    try:
        if expected is bool:
            word = raw.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError(raw)
        if expected is int:
            return int(raw)
        if expected is float:
            return float(raw)
    except ValueError:
        raise click.BadParameter(
            f"{key}={raw!r}: {key!r} must be {expected.__name__}", param_hint="'--data'"
        ) from None
    return raw


def _user_data(auth: Auth, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--data key=value`` pairs, checked against the app's user columns."""
    columns = {name: auth.storage.users.c[name] for name in auth.storage.user_column_names}
    data: dict[str, Any] = {}
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="'--data'")
        if key not in columns:
            known = ", ".join(columns) or "none"
            raise click.BadParameter(
                f"unknown key {key!r} (columns: {known})", param_hint="'--data'"
            )
        if key in data:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="'--data'")
        data[key] = _convert(columns[key], key, raw)
    return data


def _session_line(session: Session) -> str:
    """One session on one line; agent and address quoted (control characters escaped)."""
    return "  ".join(
        (
            session.session_id,
            f"created={when(session.created_at)}",
            f"last_used={when(session.last_used_at)}",
            f"expires={when(session.expires)}",
            f"idle_expires={when(session.idle_expires)}",
            f"fresh={'yes' if session.fresh else 'no'}",
            f"user_agent={json.dumps(session.user_agent)}",
            f"ip={json.dumps(session.ip_address)}",
        )
    )


@lucia_cli.command("init-db")
def init_db() -> None:
    """Create flask-lucia's tables (existing ones are kept)."""
    storage = state().storage
    with failures():
        created = storage.create_missing_tables(storage.bare_engine)
    if created:
        click.echo(f"created tables: {', '.join(created)}")
    kept = [t.name for t in storage.tables if t.name not in created]
    if kept:
        click.echo(f"already present: {', '.join(kept)}")
    with failures():
        orphans = storage.orphans(remove=True)
    if orphans:
        counted = ", ".join(f"{count} in {name}" for name, count in orphans.items())
        click.echo(f"removed rows whose user is gone: {counted}")


@lucia_cli.command("upgrade-db")
def upgrade_db() -> None:
    """Move a database made by an older release to this release's schema, in place."""
    storage = state().storage
    with failures():
        created, found = storage.prepare(storage.bare_engine, create=True)
    if found in (0, SCHEMA_VERSION):
        if created:
            click.echo(f"created tables: {', '.join(created)}")
        click.echo(f"the schema is at version {SCHEMA_VERSION}; nothing to upgrade")
    else:
        click.echo(f"upgraded the schema from version {found} to {SCHEMA_VERSION}")


@lucia_cli.command("create-user")
@click.argument("provider")
@click.argument("identifier")
@click.option(
    "--data",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A value for one of the app's user columns (repeatable).",
)
@click.option("--no-password", is_flag=True, help="Create the user without a password.")
def create_user(provider: str, identifier: str, pairs: tuple[str, ...], no_password: bool) -> None:
    """Create a user; prompts for its password."""
    auth = state()
    data = _user_data(auth, pairs)
    with failures():
        auth.check_user_data(data, partial=False)
        try:  # before the prompt: nobody types a password for a user that exists
            auth.get_user_by_provider_id(provider, identifier)
        except LuciaError as error:
            if error.code != "AUTH_INVALID_PROVIDER_ID":
                raise
        else:
            raise LuciaError("AUTH_DUPLICATE_PROVIDER_ID")
    password = None if no_password else _prompt_password()
    with failures():
        user = auth.create_user(provider, identifier, password=password, user_data=data)
    click.echo(f"created user {auth.users.id_of(user)} ({auth.provider_id(provider, identifier)})")


@lucia_cli.command("set-password")
@click.argument("user")
@click.option("--remove", is_flag=True, help="Remove the password instead of setting one.")
def set_password(user: str, remove: bool) -> None:
    """Set USER's password; ends all its sessions."""
    auth = state()
    with failures():
        found = find_user(auth, user)
    password = None if remove else _prompt_password()
    with failures():
        auth.update_user_password(auth.users.id_of(found), password)
    done = "removed the password of" if remove else "set a new password for"
    click.echo(f"{done} user {auth.users.id_of(found)}; ended all of its sessions")


@lucia_cli.command("sessions")
@click.argument("user")
def sessions(user: str) -> None:
    """List USER's sessions, newest first."""
    auth = state()
    with failures():
        found = find_user(auth, user)
        rows = auth.get_user_sessions(auth.users.id_of(found))
    if not rows:
        click.echo("no sessions")
    for session in rows:
        click.echo(_session_line(session))


@lucia_cli.command("revoke")
@click.argument("user")
@click.option("--session", "session_id", metavar="SESSION_ID", help="End only this session.")
def revoke(user: str, session_id: str | None) -> None:
    """End all of USER's sessions, or one."""
    auth = state()
    with failures():
        found = find_user(auth, user)
        if session_id is None:
            ended = auth.storage.delete_user_sessions(
                auth.users.id_of(found), event="signed_out_everywhere"
            )
        else:
            ended = auth.storage.delete_user_sessions(
                auth.users.id_of(found), session_id=session_id
            )
    if session_id is None:
        click.echo(f"ended {ended} session(s) of user {auth.users.id_of(found)}")
    elif ended:
        click.echo(f"ended session {session_id} of user {auth.users.id_of(found)}")
    else:
        raise click.ClickException(f"user {auth.users.id_of(found)} has no session {session_id!r}")


@lucia_cli.command("cleanup")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=MAX_BATCH),
    default=1000,
    show_default=True,
    help="Rows deleted per table in each short transaction.",
)
def cleanup(batch_size: int) -> None:
    """Delete expired sessions and tokens."""
    total = batches = 0
    with failures():
        for removed in state().expired_batches(batch_size):
            total += removed
            batches += 1
    click.echo(f"removed {total} expired rows in {batches} batches")
