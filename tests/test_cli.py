"""``flask lucia ...``: init-db, create-user, set-password, sessions, revoke, cleanup."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

from flask_lucia import Lucia, LuciaError
from flask_lucia.web.commands import lucia_cli

from .conftest import PASSWORD, AppFactory, Clock, all_rows, unique_prefix

NEW_PASSWORD = "another long passphrase"
TWICE = f"{PASSWORD}\n{PASSWORD}\n"


def register(app: Flask) -> Flask:
    """Add the ``lucia`` command group to an app (the extension may already have)."""
    if "lucia" not in app.cli.commands:
        app.cli.add_command(lucia_cli)
    return app


@pytest.fixture
def run(app: Flask) -> Any:
    """``run("create-user", "email", "a@b.c", input=...)``: invoke ``flask lucia ...``."""
    runner = register(app).test_cli_runner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(args=["lucia", *args], input=input)

    return invoke


def user_count(app: Flask) -> int:
    """How many users the app's database holds."""
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(storage.users)).scalar())


def create(run: Any, identifier: str = "ann@example.com", *extra: str) -> str:
    """Create a user through the CLI; its id."""
    result = run("create-user", "email", identifier, *extra, input=TWICE)
    assert result.exit_code == 0, result.output
    match = re.search(r"created user (\S+) ", result.output)
    assert match is not None, result.output
    return match.group(1)


def test_init_db_creates_the_tables(make_app: AppFactory) -> None:
    prefix = unique_prefix("cli_")
    app = register(make_app(LUCIA_CREATE_TABLES=False, LUCIA_TABLE_PREFIX=prefix))
    storage = app.extensions["lucia"].storage
    names = [table.name for table in storage.tables]
    with app.app_context():
        engine = storage.engine
    assert not any(sa.inspect(engine).has_table(name) for name in names)

    result = app.test_cli_runner().invoke(args=["lucia", "init-db"])

    assert result.exit_code == 0, result.output
    assert result.output == f"created tables: {', '.join(names)}\n"
    assert all(sa.inspect(engine).has_table(name) for name in names)
    tables = ("users", "keys", "sessions", "access_tokens", "refresh_tokens")
    assert {f"{prefix}{name}" for name in tables} <= set(names)


def test_init_db_is_idempotent(make_app: AppFactory) -> None:
    app = register(make_app(LUCIA_CREATE_TABLES=False, LUCIA_TABLE_PREFIX=unique_prefix("cli_")))
    runner = app.test_cli_runner()
    runner.invoke(args=["lucia", "init-db"])

    result = runner.invoke(args=["lucia", "init-db"])

    assert result.exit_code == 0, result.output
    names = ", ".join(table.name for table in app.extensions["lucia"].storage.tables)
    assert result.output == f"already present: {names}\n"
    assert "created" not in result.output


def test_create_user_with_prompted_password_can_sign_in(run: Any, lucia: Lucia) -> None:
    result = run("create-user", "email", "ann@example.com", input=TWICE)

    assert result.exit_code == 0, result.output
    user = lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    assert f"created user {user.user_id} (email:ann@example.com)" in result.output


def test_create_user_never_echoes_the_password(run: Any) -> None:
    result = run("create-user", "email", "ann@example.com", input=TWICE)

    assert result.exit_code == 0, result.output
    assert "Password" in result.output
    assert PASSWORD not in result.output


def test_create_user_with_mismatched_confirmation_fails(run: Any, app: Flask) -> None:
    result = run("create-user", "email", "ann@example.com", input=f"{PASSWORD}\nsomething else\n")

    assert result.exit_code != 0
    assert "do not match" in result.output
    assert user_count(app) == 0


def test_create_user_with_too_short_password_fails(run: Any, app: Flask) -> None:
    result = run("create-user", "email", "ann@example.com", input="pw\npw\n")

    assert result.exit_code == 1
    assert "Error: Password must be at least 8 characters." in result.output
    assert user_count(app) == 0


def test_create_user_without_password_cannot_sign_in(run: Any, lucia: Lucia) -> None:
    result = run("create-user", "github", "42", "--no-password")

    assert result.exit_code == 0, result.output
    assert "Password" not in result.output
    assert lucia.get_user_by_provider_id("github", "42").provider_id == "github:42"
    with pytest.raises(LuciaError) as caught:
        lucia.authenticate_user("github", "42", PASSWORD)
    assert caught.value.code == "AUTH_INVALID_PASSWORD"


def test_create_user_data_sets_columns(run: Any, lucia: Lucia) -> None:
    create(run, "ann@example.com", "--data", "username=ann", "--data", "age=42")

    user = lucia.get_user_by_provider_id("email", "ann@example.com")
    assert user.username == "ann"
    assert user.age == 42


def test_create_user_data_converts_bool_and_float(make_app: AppFactory) -> None:
    columns = [sa.Column("admin", sa.Boolean), sa.Column("score", sa.Float)]
    app = register(make_app(Lucia(user_columns=columns)))
    args = ["lucia", "create-user", "github", "42", "--no-password"]
    args += ["--data", "admin=yes", "--data", "score=2.5"]

    result = app.test_cli_runner().invoke(args=args)

    assert result.exit_code == 0, result.output
    with app.app_context():
        user = app.lucia.get_user_by_provider_id("github", "42")  # type: ignore[attr-defined]
    assert user.admin is True
    assert user.score == 2.5


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("nickname=ann", "unknown key 'nickname' (columns: username, age)"),
        ("age=old", "age='old': 'age' must be int"),
        ("age", "'age' is not key=value"),
    ],
)
def test_create_user_bad_data_creates_nobody(run: Any, app: Flask, pair: str, message: str) -> None:
    result = run("create-user", "email", "ann@example.com", "--data", pair, input=TWICE)

    assert result.exit_code == 2
    assert "Invalid value for '--data'" in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert user_count(app) == 0


def test_create_user_duplicate_fails_before_the_prompt(run: Any, app: Flask) -> None:
    create(run)

    result = run("create-user", "email", "ann@example.com", input=TWICE)

    assert result.exit_code == 1
    assert result.output == "Error: A user with this provider id already exists.\n"
    assert user_count(app) == 1


def test_create_user_duplicate_unique_column_fails(run: Any, app: Flask) -> None:
    create(run, "ann@example.com", "--data", "username=ann")

    result = run("create-user", "email", "bob@example.com", "--data", "username=ann", input=TWICE)

    assert result.exit_code == 1
    assert "Error: Another user already has this value in a unique column." in result.output
    assert user_count(app) == 1


def test_create_user_bad_provider_fails_with_message(run: Any, app: Flask) -> None:
    result = run("create-user", "", "ann@example.com", "--no-password")

    assert result.exit_code == 1
    assert result.output == "Error: provider must not be empty\n"
    assert user_count(app) == 0


def test_set_password_changes_it_and_ends_sessions(run: Any, lucia: Lucia) -> None:
    user_id = create(run)
    lucia.create_session(user_id)

    result = run("set-password", user_id, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert f"set a new password for user {user_id}; ended all of its sessions" in result.output
    assert NEW_PASSWORD not in result.output
    assert lucia.authenticate_user("email", "ann@example.com", NEW_PASSWORD).user_id == user_id
    with pytest.raises(LuciaError):
        lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    assert lucia.get_user_sessions(user_id) == []


def test_set_password_remove(run: Any, lucia: Lucia) -> None:
    user_id = create(run)

    result = run("set-password", user_id, "--remove")

    assert result.exit_code == 0, result.output
    assert f"removed the password of user {user_id}" in result.output
    with pytest.raises(LuciaError) as caught:
        lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    assert caught.value.code == "AUTH_INVALID_PASSWORD"


def test_sessions_lists_a_session(run: Any, lucia: Lucia) -> None:
    user_id = create(run)
    session, _ = lucia.auth.create_session(
        user_id, fresh=True, user_agent="Agent \x1b[31m", ip_address="192.0.2.1"
    )

    result = run("sessions", user_id)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{session.session_id}  created=")
    for field in ("last_used=", "expires=", "idle_expires="):
        assert field in lines[0]
    assert session.idle_expires.strftime("%Y-%m-%dT%H:%M:%SZ") in lines[0]
    assert lines[0].endswith('fresh=yes  user_agent="Agent \\u001b[31m"  ip="192.0.2.1"')


def test_sessions_none(run: Any) -> None:
    user_id = create(run)

    result = run("sessions", user_id)

    assert result.exit_code == 0, result.output
    assert result.output == "no sessions\n"


def test_user_argument_accepts_a_provider_id(run: Any, lucia: Lucia) -> None:
    # An identifier with a colon: only the first one separates the provider. (Not an
    # email identifier: those must be addresses, and an address has no bare colon.)
    user_id = lucia.create_user("ldap", "ann:admin", password=PASSWORD).user_id
    session, _ = lucia.create_session(user_id)

    result = run("sessions", "ldap:ann:admin")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(session.session_id)


@pytest.mark.parametrize(
    ("user", "looked_for"),
    [
        ("nobody", " or provider id 'email:nobody'"),
        ("email:nobody@example.com", " or provider id 'email:nobody@example.com'"),
        ("x" * 300, ""),
        (":", " or provider id 'email::'"),
    ],
)
def test_unknown_user_fails_with_a_message_naming_the_ids_looked_for(
    run: Any, user: str, looked_for: str
) -> None:
    create(run)

    result = run("sessions", user)

    assert result.exit_code == 1
    assert result.output == f"Error: no user with id {user!r}{looked_for}\n"
    assert isinstance(result.exception, SystemExit)


def test_sessions_accepts_a_bare_email_and_says_which_provider_id_it_found(
    run: Any, lucia: Lucia
) -> None:
    user_id = create(run)
    session, _ = lucia.create_session(user_id)

    result = run("sessions", "ann@example.com")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(session.session_id)
    assert result.stderr == f"user {user_id} (email:ann@example.com)\n"


def test_a_bare_unknown_email_names_the_provider_id_looked_for(run: Any) -> None:
    result = run("sessions", "nobody@example.com")

    assert result.exit_code == 1
    assert "provider id 'email:nobody@example.com'" in result.output


def test_the_bare_identifier_uses_the_password_provider(make_app: AppFactory) -> None:
    app = register(make_app(LUCIA_PASSWORD_PROVIDER="username"))
    with app.app_context():
        app.extensions["lucia"].create_user("username", "ann", password=PASSWORD)
    result = app.test_cli_runner().invoke(args=["lucia", "sessions", "ann"])
    assert result.exit_code == 0, result.output
    assert result.stderr.endswith("(username:ann)\n") and result.stdout == "no sessions\n"


def test_revoke_ends_every_session(run: Any, lucia: Lucia) -> None:
    user_id = create(run)
    lucia.create_session(user_id)
    lucia.create_session(user_id)

    result = run("revoke", "email:ann@example.com")

    assert result.exit_code == 0, result.output
    assert result.output == f"ended 2 session(s) of user {user_id}\n"
    assert lucia.get_user_sessions(user_id) == []


def test_revoke_one_session_keeps_the_other(run: Any, lucia: Lucia) -> None:
    user_id = create(run)
    ended, _ = lucia.create_session(user_id)
    kept, kept_tokens = lucia.create_session(user_id)

    result = run("revoke", user_id, "--session", ended.session_id)

    assert result.exit_code == 0, result.output
    assert result.output == f"ended session {ended.session_id} of user {user_id}\n"
    assert [s.session_id for s in lucia.get_user_sessions(user_id)] == [kept.session_id]
    assert lucia.validate_access_token(kept_tokens.access_token).session_id == kept.session_id


def test_revoke_unknown_session_fails(run: Any, lucia: Lucia) -> None:
    user_id = create(run)
    lucia.create_session(user_id)

    result = run("revoke", user_id, "--session", "nope")

    assert result.exit_code == 1
    assert result.output == f"Error: user {user_id} has no session 'nope'\n"
    assert len(lucia.get_user_sessions(user_id)) == 1


def test_revoke_does_not_end_another_users_session(run: Any, lucia: Lucia) -> None:
    ann = create(run, "ann@example.com")
    bob = create(run, "bob@example.com")
    bobs, _ = lucia.create_session(bob)

    result = run("revoke", ann, "--session", bobs.session_id)

    assert result.exit_code == 1
    assert [s.session_id for s in lucia.get_user_sessions(bob)] == [bobs.session_id]


def test_cleanup_removes_expired_rows(run: Any, lucia: Lucia, app: Flask, clock: Clock) -> None:
    user_id = create(run)
    lucia.create_session(user_id)
    lucia.create_session(user_id)
    clock.advance(15 * 24 * 3600)  # past the 14-day refresh token: both sessions idle out
    live, _ = lucia.create_session(user_id)

    result = run("cleanup")

    assert result.exit_code == 0, result.output
    # two sessions, each with one access and one refresh token and a family row
    assert result.output == "removed 8 expired rows in 1 batches\n"
    assert [s.session_id for s in lucia.get_user_sessions(user_id)] == [live.session_id]
    # the user and its key; the live session, its two tokens, its family
    assert len(all_rows(app)) == 2 + 4


def test_cleanup_loops_in_batches(run: Any, lucia: Lucia, app: Flask, clock: Clock) -> None:
    user_id = create(run)
    lucia.create_session(user_id)
    lucia.create_session(user_id)
    clock.advance(15 * 24 * 3600)

    result = run("cleanup", "--batch-size", "1")

    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"removed 8 expired rows in (\d+) batches\n", result.output)
    assert match is not None, result.output
    assert int(match.group(1)) > 1
    assert lucia.get_user_sessions(user_id) == []
    assert len(all_rows(app)) == 2  # the user and its key


def test_cleanup_keeps_a_live_session_and_drops_its_expired_access_token(
    run: Any, lucia: Lucia, app: Flask, clock: Clock
) -> None:
    session, _ = lucia.create_session(create(run))
    clock.advance(16 * 60)  # past the 15-minute access token, well within the session

    result = run("cleanup", "--batch-size", "1")

    assert result.output == "removed 1 expired rows in 1 batches\n"
    assert [s.session_id for s in lucia.get_user_sessions(session.user_id)] == [session.session_id]
    # the user and its key; the session, its refresh token and family
    assert len(all_rows(app)) == 2 + 3


def test_cleanup_with_nothing_expired(run: Any, lucia: Lucia) -> None:
    lucia.create_session(create(run))

    result = run("cleanup")

    assert result.exit_code == 0, result.output
    assert result.output == "removed 0 expired rows in 0 batches\n"


@pytest.mark.parametrize(
    "args",
    [
        ("cleanup", "--bogus"),
        ("cleanup", "--batch-size", "0"),
        ("cleanup", "--batch-size", "many"),
        ("cleanup", "--batch-size", "10001"),
        ("sessions",),
        ("create-user", "email"),
        ("no-such-command",),
    ],
)
def test_bad_arguments_are_usage_errors(run: Any, args: tuple[str, ...]) -> None:
    result = run(*args)

    assert result.exit_code == 2
    assert "Usage: " in result.output
    assert isinstance(result.exception, SystemExit)


def test_every_command_has_help(run: Any) -> None:
    result = run("--help")

    assert result.exit_code == 0
    for name in ("init-db", "create-user", "set-password", "sessions", "revoke", "cleanup"):
        assert re.search(rf"^  {name}\s+\S", result.output, re.MULTILINE), name


def test_init_db_with_create_tables_on_reports_the_tables_it_created(
    make_app: AppFactory,
) -> None:
    app = register(make_app(LUCIA_CREATE_TABLES=True, LUCIA_TABLE_PREFIX=unique_prefix("cli_on_")))
    names = [table.name for table in app.extensions["lucia"].storage.tables]

    result = app.test_cli_runner().invoke(args=["lucia", "init-db"])

    assert result.exit_code == 0, result.output
    assert result.output == f"created tables: {', '.join(names)}\n"
