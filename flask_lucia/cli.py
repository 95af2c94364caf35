"""``flask lucia ...``: create and upgrade tables, manage users and sessions, remove expired
rows, mail a password reset link.

Every command acts on the app's ``Auth`` (``app.extensions["lucia"]``). Failures
are ``click`` errors with a message (exit 1; bad arguments exit 2), never a
traceback. Passwords are only ever read from a hidden, confirmed prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.core.store.schema import EMAIL_PROVIDER, SCHEMA_VERSION
from flask_lucia.core.store.sessions import MAX_BATCH
from flask_lucia.errors import LuciaError
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.types import Session
from flask_lucia.web.base import state

lucia_cli = AppGroup("lucia", help="Manage flask-lucia users, sessions and tables.")

_TRUE = frozenset({"1", "true", "yes", "y", "on", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "off", "f"})


@contextmanager
def _failures() -> Iterator[None]:
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


def _find_user(auth: Auth, value: str) -> Any:
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


def _when(moment: datetime | None) -> str:
    """A UTC time to the second, ``-`` for none."""
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _session_line(session: Session) -> str:
    """One session on one line; agent and address quoted (control characters escaped)."""
    return "  ".join(
        (
            session.session_id,
            f"created={_when(session.created_at)}",
            f"last_used={_when(session.last_used_at)}",
            f"expires={_when(session.expires)}",
            f"idle_expires={_when(session.idle_expires)}",
            f"fresh={'yes' if session.fresh else 'no'}",
            f"user_agent={json.dumps(session.user_agent)}",
            f"ip={json.dumps(session.ip_address)}",
        )
    )


@lucia_cli.command("init-db")
def init_db() -> None:
    """Create flask-lucia's tables (existing ones are kept)."""
    storage = state().storage
    with _failures():
        created = storage.create_missing_tables(storage.bare_engine)
    if created:
        click.echo(f"created tables: {', '.join(created)}")
    kept = [t.name for t in storage.tables if t.name not in created]
    if kept:
        click.echo(f"already present: {', '.join(kept)}")
    with _failures():
        orphans = storage.orphans(remove=True)
    if orphans:
        counted = ", ".join(f"{count} in {name}" for name, count in orphans.items())
        click.echo(f"removed rows whose user is gone: {counted}")


@lucia_cli.command("upgrade-db")
def upgrade_db() -> None:
    """Move a database made by an older release to this release's schema, in place."""
    storage = state().storage
    with _failures():
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
    with _failures():
        auth.check_user_data(data, partial=False)
        try:  # before the prompt: nobody types a password for a user that exists
            auth.get_user_by_provider_id(provider, identifier)
        except LuciaError as error:
            if error.code != "AUTH_INVALID_PROVIDER_ID":
                raise
        else:
            raise LuciaError("AUTH_DUPLICATE_PROVIDER_ID")
    password = None if no_password else _prompt_password()
    with _failures():
        user = auth.create_user(provider, identifier, password=password, user_data=data)
    click.echo(f"created user {auth.users.id_of(user)} ({auth.provider_id(provider, identifier)})")


@lucia_cli.command("set-password")
@click.argument("user")
@click.option("--remove", is_flag=True, help="Remove the password instead of setting one.")
def set_password(user: str, remove: bool) -> None:
    """Set USER's password; ends all its sessions."""
    auth = state()
    with _failures():
        found = _find_user(auth, user)
    password = None if remove else _prompt_password()
    with _failures():
        auth.update_user_password(auth.users.id_of(found), password)
    done = "removed the password of" if remove else "set a new password for"
    click.echo(f"{done} user {auth.users.id_of(found)}; ended all of its sessions")


@lucia_cli.command("sessions")
@click.argument("user")
def sessions(user: str) -> None:
    """List USER's sessions, newest first."""
    auth = state()
    with _failures():
        found = _find_user(auth, user)
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
    with _failures():
        found = _find_user(auth, user)
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


_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _since(raw: str | None) -> int | None:
    """``--since``: a date or time (``2024-06-01``, ``2024-06-01T14:00``, UTC unless it
    says otherwise) or an age (``30m``, ``12h``, ``7d``), as unix ms."""
    if raw is None:
        return None
    value = raw.strip()
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        return now_ms() - int(value[:-1]) * _UNITS[value[-1]]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is not a date (2024-06-01) or an age (30m, 12h, 7d)", param_hint="'--since'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@lucia_cli.command("activity")
@click.argument("user")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (sign_in ...); repeatable.")
@click.option("--since", help="From this date or age on: 2024-06-01, 12h, 7d.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def activity(user: str, kinds: tuple[str, ...], since: str | None, limit: int) -> None:
    """List USER's security events, newest first (also a deleted account's, by its id)."""
    auth = state()
    start = _since(since)
    store = current_app.extensions["lucia_activity"]
    unknown = sorted(set(kinds) - set(store.kinds))
    if unknown:
        raise click.BadParameter(
            f"unknown kind {unknown[0]!r}; one of: {', '.join(store.kinds)}", param_hint="'--kind'"
        )
    with _failures():
        try:
            user_id = auth.users.id_of(_find_user(auth, user))
        except click.ClickException:  # a deleted account keeps its account_deleted event
            user_id = auth.users.check_id(user)
            if not store.recent(user_id, limit=1, hidden=()):
                raise
        found = store.recent(user_id, limit=limit, since=start, kinds=kinds, hidden=())
    if not found:
        click.echo("no events")
    for event in found:
        amr = " ".join(event.amr or ())
        moment = datetime.fromtimestamp(event.at / 1000, timezone.utc)
        device, ip = json.dumps(event.device), json.dumps(event.ip)  # control characters escaped
        click.echo(f"{_when(moment)}  {event.kind}  device={device}  ip={ip}  amr={amr or '-'}")


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
    with _failures():
        for removed in state().expired_batches(batch_size):
            total += removed
            batches += 1
    click.echo(f"removed {total} expired rows in {batches} batches")


@lucia_cli.command("send-reset")
@click.argument("email")
def send_reset(email: str) -> None:
    """Mail the user with EMAIL a password reset link (LUCIA_BASE_URL builds the link)."""
    auth = state()
    if auth.settings.base_url is None and not current_app.config.get("SERVER_NAME"):
        raise click.ClickException(
            "set LUCIA_BASE_URL (or SERVER_NAME and PREFERRED_URL_SCHEME) so the link in "
            "the mail can be built"
        )
    with _failures():
        emails = current_app.extensions["lucia_email"]
        address = emails.key(email).partition(":")[2]
        user_id = emails.store.owner(f"{EMAIL_PROVIDER}:{address}")
    if user_id is None:
        raise click.ClickException(f"no user has the email {address}")
    try:
        with _failures():
            emails.send_reset(user_id, address)
    except MailError as error:
        raise click.ClickException(f"{NOT_SENT} ({error})") from error
    click.echo(f"sent a password reset link to {address}")
