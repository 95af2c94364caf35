"""Provider keys (DESIGN §12): several ways in per user, looked up alike, never none."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lucia import Lucia, LuciaError

from .conftest import PASSWORD, AppFactory, all_rows


def new_user(lucia: Lucia, identifier: str = "ann@example.com") -> Any:
    return lucia.create_user("email", identifier, password=PASSWORD)


def code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(LuciaError) as raised:
        call(*args, **kwargs)
    return raised.value.code


def test_a_new_user_has_its_first_key(lucia: Lucia) -> None:
    user = new_user(lucia)
    assert lucia.get_user_provider_ids(user.user_id) == ["email:ann@example.com"]


def test_an_added_key_finds_the_same_user(lucia: Lucia) -> None:
    user = new_user(lucia)
    lucia.add_provider_id(user.user_id, "github", "42")
    assert lucia.get_user_by_provider_id("github", "42") == user
    assert lucia.get_user_provider_ids(user.user_id) == ["email:ann@example.com", "github:42"]


def test_provider_id_stays_the_first_key(lucia: Lucia) -> None:
    user = new_user(lucia)
    lucia.add_provider_id(user.user_id, "github", "42")
    assert lucia.get_user(user.user_id).provider_id == "email:ann@example.com"


def test_a_key_with_its_own_password_signs_in(lucia: Lucia) -> None:
    user = new_user(lucia)
    lucia.add_provider_id(user.user_id, "username", "ann", password="another password")
    assert lucia.authenticate_user("username", "ann", "another password") == user
    assert code(lucia.authenticate_user, "username", "ann", PASSWORD) == "AUTH_INVALID_PASSWORD"


def test_adding_a_taken_key_raises_duplicate_provider_id(lucia: Lucia) -> None:
    ann, bob = new_user(lucia), new_user(lucia, "bob@example.com")
    taken = code(lucia.add_provider_id, bob.user_id, "email", "ann@example.com")
    assert taken == "AUTH_DUPLICATE_PROVIDER_ID"
    assert lucia.get_user_provider_ids(ann.user_id) == ["email:ann@example.com"]


def test_adding_a_key_to_an_unknown_user_raises_invalid_user_id(lucia: Lucia) -> None:
    assert code(lucia.add_provider_id, "nobody", "github", "42") == "AUTH_INVALID_USER_ID"


def test_removing_the_last_key_is_refused(lucia: Lucia) -> None:
    user = new_user(lucia)
    refused = code(lucia.remove_provider_id, user.user_id, "email", "ann@example.com")
    assert refused == "AUTH_LAST_PROVIDER_ID"
    assert lucia.get_user_provider_ids(user.user_id) == ["email:ann@example.com"]


def test_removing_a_key_leaves_the_others(lucia: Lucia) -> None:
    user = new_user(lucia)
    lucia.add_provider_id(user.user_id, "github", "42")
    lucia.remove_provider_id(user.user_id, "email", "ann@example.com")
    assert lucia.get_user_provider_ids(user.user_id) == ["github:42"]
    assert lucia.get_user(user.user_id).provider_id == "github:42"
    gone = code(lucia.get_user_by_provider_id, "email", "ann@example.com")
    assert gone == "AUTH_INVALID_PROVIDER_ID"


def test_removing_another_users_key_is_refused(lucia: Lucia) -> None:
    ann, bob = new_user(lucia), new_user(lucia, "bob@example.com")
    lucia.add_provider_id(bob.user_id, "github", "7")
    refused = code(lucia.remove_provider_id, ann.user_id, "github", "7")
    assert refused == "AUTH_INVALID_PROVIDER_ID"
    assert lucia.get_user_provider_ids(bob.user_id) == ["email:bob@example.com", "github:7"]


def test_two_removals_at_once_never_leave_a_user_without_a_key(app: Flask) -> None:
    lucia: Lucia = app.lucia  # type: ignore[attr-defined]
    for round_ in range(10):
        with app.app_context():
            user = new_user(lucia, f"u{round_}@example.com")
            lucia.add_provider_id(user.user_id, "github", str(round_))
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def remove(
            provider: str,
            identifier: str,
            user_id: str = user.user_id,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            with app.app_context():
                barrier.wait()
                try:
                    lucia.remove_provider_id(user_id, provider, identifier)
                    outcomes.append("removed")
                except LuciaError as error:
                    outcomes.append(error.code)

        threads = [
            threading.Thread(target=remove, args=("email", f"u{round_}@example.com")),
            threading.Thread(target=remove, args=("github", str(round_))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with app.app_context():
            left = lucia.get_user_provider_ids(user.user_id)
        assert sorted(outcomes) == ["AUTH_LAST_PROVIDER_ID", "removed"], round_
        assert len(left) == 1


def test_rekeying_keeps_the_password_and_the_sessions(lucia: Lucia) -> None:
    user = new_user(lucia)
    session, tokens = lucia.create_session(user.user_id)
    lucia.update_user_provider_id(user.user_id, "email", "new@example.com")
    assert lucia.authenticate_user("email", "new@example.com", PASSWORD) == lucia.get_user(
        user.user_id
    )
    assert lucia.validate_access_token(tokens.access_token).session_id == session.session_id


def test_a_password_change_reaches_every_key_that_has_one(lucia: Lucia) -> None:
    user = new_user(lucia)
    lucia.add_provider_id(user.user_id, "username", "ann", password=PASSWORD)
    lucia.add_provider_id(user.user_id, "github", "42")
    lucia.update_user_password(user.user_id, "a new password")
    assert lucia.authenticate_user("email", "ann@example.com", "a new password") == user
    assert lucia.authenticate_user("username", "ann", "a new password") == user
    no_password = code(lucia.authenticate_user, "github", "42", "a new password")
    assert no_password == "AUTH_INVALID_PASSWORD"


@pytest.mark.parametrize(
    ("provider", "identifier"),
    [("", "x"), ("email", ""), ("e:mail", "x"), (None, "x"), ("email", 42)],
    ids=["empty provider", "empty identifier", "colon in provider", "None", "not a str"],
)
def test_a_malformed_provider_id_is_refused_and_writes_nothing(
    app: Flask, lucia: Lucia, provider: Any, identifier: Any
) -> None:
    user = new_user(lucia)
    before = all_rows(app)
    with pytest.raises((TypeError, ValueError)):
        lucia.add_provider_id(user.user_id, provider, identifier)
    with pytest.raises((TypeError, ValueError)):
        lucia.create_user(provider, identifier)
    assert all_rows(app) == before


def test_user_id_is_also_id_and_identifier_is_the_first_keys(lucia: Lucia) -> None:
    user = new_user(lucia)
    assert user.id == user.user_id
    assert user.identifier == "ann@example.com"


def test_create_tables_and_drop_tables_without_flask_sqlalchemy(make_app: AppFactory) -> None:
    app = make_app(LUCIA_CREATE_TABLES=False)
    lucia: Lucia = app.lucia  # type: ignore[attr-defined]
    storage = app.extensions["lucia"].storage
    names = [table.name for table in storage.tables]
    with app.app_context():
        created = lucia.create_tables()
        lucia.create_user("email", "ann@example.com")
        present = sa.inspect(storage.bare_engine).get_table_names()
        lucia.drop_tables()
        left = sa.inspect(storage.bare_engine).get_table_names()
    assert created == names
    assert set(names) <= set(present)
    assert not set(names) & set(left)


def test_an_imported_werkzeug_hash_signs_in_and_is_rehashed(lucia: Lucia) -> None:
    from werkzeug.security import generate_password_hash

    user = new_user(lucia)
    imported = generate_password_hash("old password", "scrypt")
    lucia.add_provider_id(user.user_id, "username", "ann", password_hash=imported)
    assert lucia.authenticate_user("username", "ann", "old password") == user


@pytest.mark.parametrize("bad", ["plain text", "", "md5:abc", 42])
def test_an_unknown_password_hash_is_refused_and_writes_nothing(
    app: Flask, lucia: Lucia, bad: Any
) -> None:
    user = new_user(lucia)
    before = all_rows(app)
    with pytest.raises(ValueError, match="password_hash"):
        lucia.add_provider_id(user.user_id, "username", "ann", password_hash=bad)
    assert all_rows(app) == before
