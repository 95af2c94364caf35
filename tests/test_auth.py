"""The seed API: every function of DESIGN §2, its result and each error it names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher as Argon2
from flask import Flask
from werkzeug.security import generate_password_hash

from flask_lucia import Lucia, LuciaError, Session, Tokens, User, generate_random_string, signals
from flask_lucia.core.refresh import SPENT_KEPT
from flask_lucia.core.tokens import digest, family_digest, new_refresh_token, unseal

from .conftest import PASSWORD, Clock, all_rows


def error_code(excinfo: pytest.ExceptionInfo[LuciaError]) -> str:
    return excinfo.value.code


def make_user(lucia: Lucia, identifier: str = "ann@example.com", **data: Any) -> User:
    return lucia.create_user("email", identifier, password=PASSWORD, user_data=data or None)


def set_hash(app: Flask, user_id: str, hashed: str) -> None:
    storage = app.extensions["lucia"].storage
    with storage.engine.begin() as conn:
        conn.execute(
            storage.keys.update()
            .where(storage.keys.c.user_id == user_id)
            .values(hashed_password=hashed)
        )


def stored_hash(app: Flask, user_id: str) -> str:
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        return conn.execute(
            sa.select(storage.keys.c.hashed_password).where(storage.keys.c.user_id == user_id)
        ).scalar_one()


def count(app: Flask, table: str) -> int:
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(getattr(storage, table))
        ).scalar_one()


# -- generate_random_string ------------------------------------------------------


def test_generate_random_string_is_alphanumeric_of_the_asked_length() -> None:
    value = generate_random_string(40)
    assert len(value) == 40 and value.isalnum() and value.isascii()


# -- create_user -----------------------------------------------------------------


def test_create_user_returns_the_user_with_provider_id_and_data(lucia: Lucia) -> None:
    user = make_user(lucia, username="ann", age=30)
    assert user.provider_id == "email:ann@example.com"
    assert user.username == "ann" and user.data == {"username": "ann", "age": 30}
    assert user.is_authenticated and len(user.user_id) == 15


def test_create_user_uses_generate_user_id(make_app: Any) -> None:
    app = make_app(Lucia(generate_user_id=lambda: "user-" + generate_random_string(8)))
    with app.app_context():
        assert app.lucia.create_user("github", "42").user_id.startswith("user-")


def test_create_user_never_exposes_the_password_hash(lucia: Lucia) -> None:
    user = make_user(lucia)
    assert "hashed_password" not in user.data
    assert not hasattr(user, "hashed_password")


def test_create_user_stores_an_argon2id_hash(app: Flask, lucia: Lucia) -> None:
    user = make_user(lucia)
    assert stored_hash(app, user.user_id).startswith("$argon2id$")


def test_create_user_with_a_taken_provider_id_raises_duplicate_provider_id(lucia: Lucia) -> None:
    make_user(lucia)
    with pytest.raises(LuciaError) as excinfo:
        make_user(lucia)
    assert error_code(excinfo) == "AUTH_DUPLICATE_PROVIDER_ID"


def test_create_user_with_a_taken_unique_column_raises_duplicate_user_data(
    app: Flask, lucia: Lucia
) -> None:
    make_user(lucia, "a@example.com", username="ann")
    with pytest.raises(LuciaError) as excinfo:
        make_user(lucia, "b@example.com", username="ann")
    assert error_code(excinfo) == "AUTH_DUPLICATE_USER_DATA"
    assert count(app, "users") == 1


def test_create_user_rejects_unknown_user_data_keys_and_writes_nothing(
    app: Flask, lucia: Lucia
) -> None:
    with pytest.raises(ValueError, match="unknown user_data keys: is_admin"):
        make_user(lucia, username="ann", is_admin=True)
    assert count(app, "users") == 0


def test_create_user_rejects_a_value_of_the_wrong_type_naming_the_column(lucia: Lucia) -> None:
    with pytest.raises(TypeError, match="user_data\\['age'\\] must be int"):
        make_user(lucia, age="thirty")


def test_create_user_rejects_an_oversized_value(app: Flask, lucia: Lucia) -> None:
    with pytest.raises(ValueError, match="at most 32 characters"):
        make_user(lucia, username="x" * 33)
    assert count(app, "users") == 0


def test_create_user_rejects_user_data_that_is_not_a_dict(lucia: Lucia) -> None:
    with pytest.raises(TypeError, match="user_data must be a dict"):
        lucia.create_user("email", "a@example.com", user_data=["username"])  # type: ignore[arg-type]


def test_create_user_rejects_a_provider_with_a_colon(lucia: Lucia) -> None:
    with pytest.raises(ValueError, match="provider must not contain ':'"):
        lucia.create_user("e:mail", "a@example.com")


def test_create_user_rejects_a_non_string_identifier_naming_it(lucia: Lucia) -> None:
    with pytest.raises(TypeError, match="identifier must be a str"):
        lucia.create_user("email", 42)  # type: ignore[arg-type]


def test_create_user_rejects_an_empty_identifier(lucia: Lucia) -> None:
    with pytest.raises(ValueError, match="identifier must not be empty"):
        lucia.create_user("email", "")


def test_an_email_identifier_is_trimmed_and_lowercased(lucia: Lucia) -> None:
    user = lucia.create_user("email", "  Ann@Example.COM ", password=PASSWORD)
    assert user.provider_id == "email:ann@example.com"


def test_an_email_differing_only_in_case_is_a_duplicate(lucia: Lucia) -> None:
    make_user(lucia, "victim@example.com")
    with pytest.raises(LuciaError) as excinfo:
        lucia.create_user("email", "Victim@Example.com", password=PASSWORD)
    assert error_code(excinfo) == "AUTH_DUPLICATE_PROVIDER_ID"


def test_every_lookup_of_an_email_ignores_case_and_spaces(lucia: Lucia) -> None:
    user = make_user(lucia, "ann@example.com")
    assert lucia.get_user_by_provider_id("email", " ANN@example.com") == user
    assert lucia.authenticate_user("email", "Ann@Example.com ", PASSWORD) == user
    lucia.update_user_provider_id(user.user_id, "email", "Anna@Example.com")
    assert lucia.get_user_by_provider_id("email", "anna@example.com").user_id == user.user_id


@pytest.mark.parametrize("identifier", ["not-an-email", "ann@", "@example.com", "a b@example.com"])
def test_create_user_refuses_an_email_identifier_that_is_no_address(
    app: Flask, lucia: Lucia, identifier: str
) -> None:
    with pytest.raises(ValueError, match="identifier is not a valid email address"):
        lucia.create_user("email", identifier, password=PASSWORD)
    assert count(app, "users") == 0


def test_other_providers_trim_and_nfkc_normalize_without_lowercasing(lucia: Lucia) -> None:
    user = lucia.create_user("username", " \uff21nn\ufb01 ")  # fullwidth A, fi ligature
    assert user.provider_id == "username:Annfi"
    assert lucia.get_user_by_provider_id("username", "Annfi") == user


def test_a_huge_identifier_is_refused_before_it_is_normalized(
    lucia: Lucia, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unicodedata

    lengths: list[int] = []
    real_normalize = unicodedata.normalize

    def spy(form: str, text: str) -> str:
        lengths.append(len(text))
        return real_normalize(form, text)

    monkeypatch.setattr(unicodedata, "normalize", spy)
    with pytest.raises(ValueError, match="at most 255 characters"):
        lucia.get_user_by_provider_id("username", "\ufb03" * 1_000_000)
    assert all(length <= 255 for length in lengths)


def test_create_user_with_a_short_password_raises_invalid_password_and_writes_nothing(
    app: Flask, lucia: Lucia
) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.create_user("email", "a@example.com", password="short")
    assert error_code(excinfo) == "AUTH_INVALID_PASSWORD"
    assert count(app, "users") == 0


def test_create_user_sends_user_created_once(lucia: Lucia) -> None:
    seen: list[User] = []
    with signals.user_created.connected_to(lambda app, user: seen.append(user)):
        user = make_user(lucia)
    assert seen == [user]


# -- authenticate_user -----------------------------------------------------------


def test_authenticate_user_returns_the_user_for_the_right_password(lucia: Lucia) -> None:
    user = make_user(lucia)
    assert lucia.authenticate_user("email", "ann@example.com", PASSWORD) == user


def test_authenticate_user_with_a_wrong_password_raises_invalid_password(lucia: Lucia) -> None:
    make_user(lucia)
    with pytest.raises(LuciaError) as excinfo:
        lucia.authenticate_user("email", "ann@example.com", "wrong password")
    assert error_code(excinfo) == "AUTH_INVALID_PASSWORD"


def test_authenticate_user_refuses_a_huge_password_before_normalizing_or_hashing(
    app: Flask, lucia: Lucia, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unicodedata

    make_user(lucia)
    lengths: list[int] = []
    real_normalize = unicodedata.normalize

    def spy(form: str, text: str) -> str:
        lengths.append(len(text))
        return real_normalize(form, text)

    monkeypatch.setattr(unicodedata, "normalize", spy)
    hasher = app.extensions["lucia"].hasher
    monkeypatch.setattr(hasher, "verify", lambda *a: pytest.fail("hashed a huge password"))
    with pytest.raises(LuciaError) as excinfo:
        lucia.authenticate_user("email", "ann@example.com", "x" * 10_000_000)
    assert error_code(excinfo) == "AUTH_INVALID_PASSWORD"
    assert all(length <= 256 for length in lengths)


def test_authenticate_unknown_user_raises_invalid_provider_id(lucia: Lucia) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.authenticate_user("email", "nobody@example.com", PASSWORD)
    assert error_code(excinfo) == "AUTH_INVALID_PROVIDER_ID"


def test_authenticate_unknown_user_still_runs_a_password_hash(
    app: Flask, lucia: Lucia, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = app.extensions["lucia"].hasher
    calls: list[str] = []
    real = hasher._verify_argon2
    monkeypatch.setattr(hasher, "_verify_argon2", lambda h, p: calls.append(h) or real(h, p))
    with pytest.raises(LuciaError):
        lucia.authenticate_user("email", "nobody@example.com", PASSWORD)
    assert len(calls) == 1


def test_authenticate_user_without_a_password_raises_invalid_password(lucia: Lucia) -> None:
    lucia.create_user("github", "42")
    with pytest.raises(LuciaError) as excinfo:
        lucia.authenticate_user("github", "42", PASSWORD)
    assert error_code(excinfo) == "AUTH_INVALID_PASSWORD"


def test_authenticate_user_normalizes_the_password_nfkc(lucia: Lucia) -> None:
    lucia.create_user("email", "a@example.com", password="ﬁne password")  # U+FB01 ligature
    assert lucia.authenticate_user("email", "a@example.com", "fine password")


@pytest.mark.parametrize(
    "legacy",
    [
        pytest.param(lambda pw: generate_password_hash(pw, "pbkdf2:sha256"), id="werkzeug-pbkdf2"),
        pytest.param(lambda pw: generate_password_hash(pw, "scrypt"), id="werkzeug-scrypt"),
    ],
)
def test_authenticate_user_upgrades_a_legacy_hash_to_argon2id(
    app: Flask, lucia: Lucia, legacy: Any
) -> None:
    user = lucia.create_user("email", "a@example.com")
    set_hash(app, user.user_id, legacy(PASSWORD))
    seen: list[User] = []
    with signals.password_rehashed.connected_to(lambda app, user: seen.append(user)):
        lucia.authenticate_user("email", "a@example.com", PASSWORD)
    assert stored_hash(app, user.user_id).startswith("$argon2id$")
    assert seen == [user]


def test_authenticate_user_rehashes_an_argon2_hash_with_weaker_parameters(
    app: Flask, lucia: Lucia
) -> None:
    user = lucia.create_user("email", "a@example.com")
    set_hash(app, user.user_id, Argon2(time_cost=1, memory_cost=8192).hash(PASSWORD))
    lucia.authenticate_user("email", "a@example.com", PASSWORD)
    assert "m=19456,t=2,p=1" in stored_hash(app, user.user_id)


def test_authenticate_user_keeps_a_current_hash(app: Flask, lucia: Lucia) -> None:
    user = make_user(lucia)
    before = stored_hash(app, user.user_id)
    lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    assert stored_hash(app, user.user_id) == before


def test_authenticate_user_rejects_a_non_string_password(lucia: Lucia) -> None:
    make_user(lucia)
    with pytest.raises(TypeError, match="password must be a str"):
        lucia.authenticate_user("email", "ann@example.com", None)  # type: ignore[arg-type]


# -- get_user, get_user_by_provider_id, get_session_user ----------------------------


def test_get_user_returns_the_user(lucia: Lucia) -> None:
    user = make_user(lucia, username="ann")
    assert lucia.get_user(user.user_id) == user


def test_get_user_with_an_unknown_id_raises_invalid_user_id(lucia: Lucia) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.get_user("nobody")
    assert error_code(excinfo) == "AUTH_INVALID_USER_ID"


def test_get_user_with_a_non_string_id_raises_type_error(lucia: Lucia) -> None:
    with pytest.raises(TypeError, match="user_id must be a str"):
        lucia.get_user(7)  # type: ignore[arg-type]


def test_get_user_by_provider_id_returns_the_user(lucia: Lucia) -> None:
    user = make_user(lucia)
    assert lucia.get_user_by_provider_id("email", "ann@example.com") == user


def test_get_user_by_unknown_provider_id_raises_invalid_provider_id(lucia: Lucia) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.get_user_by_provider_id("email", "nobody@example.com")
    assert error_code(excinfo) == "AUTH_INVALID_PROVIDER_ID"


def test_get_session_user_returns_the_user_of_an_access_token(lucia: Lucia) -> None:
    user = make_user(lucia)
    _, tokens = lucia.create_session(user.user_id)
    assert lucia.get_session_user(tokens.access_token) == user


def test_get_session_user_with_an_unknown_token_raises_invalid_access_token(
    lucia: Lucia,
) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.get_session_user(generate_random_string(32))
    assert error_code(excinfo) == "AUTH_INVALID_ACCESS_TOKEN"


# -- update_user_* and delete_user ------------------------------------------------


def test_update_user_data_changes_the_columns_given(lucia: Lucia) -> None:
    user = make_user(lucia, username="ann", age=30)
    updated = lucia.update_user_data(user.user_id, {"age": 31})
    assert updated.data == {"username": "ann", "age": 31}


def test_update_user_data_rejects_unknown_keys(lucia: Lucia) -> None:
    user = make_user(lucia)
    with pytest.raises(ValueError, match="unknown user_data keys: role"):
        lucia.update_user_data(user.user_id, {"role": "admin"})


def test_update_user_data_of_an_unknown_user_raises_invalid_user_id(lucia: Lucia) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.update_user_data("nobody", {"age": 3})
    assert error_code(excinfo) == "AUTH_INVALID_USER_ID"


def test_update_user_data_to_a_taken_value_raises_duplicate_user_data(lucia: Lucia) -> None:
    make_user(lucia, "a@example.com", username="ann")
    bob = make_user(lucia, "b@example.com", username="bob")
    with pytest.raises(LuciaError) as excinfo:
        lucia.update_user_data(bob.user_id, {"username": "ann"})
    assert error_code(excinfo) == "AUTH_DUPLICATE_USER_DATA"
    assert lucia.get_user(bob.user_id).username == "bob"


def test_update_user_password_changes_the_password(lucia: Lucia) -> None:
    user = make_user(lucia)
    lucia.update_user_password(user.user_id, "a new password")
    assert lucia.authenticate_user("email", "ann@example.com", "a new password") == user


def test_update_user_password_ends_the_users_sessions(lucia: Lucia) -> None:
    user = make_user(lucia)
    _, tokens = lucia.create_session(user.user_id)
    lucia.update_user_password(user.user_id, "a new password")
    with pytest.raises(LuciaError):
        lucia.validate_access_token(tokens.access_token)


def refuse_ending_sessions(app: Flask) -> Callable[[], None]:
    """Make every delete of a session fail in the database (a trigger); returns the undo."""
    storage = app.extensions["lucia"].storage
    table = storage.sessions.name
    with storage.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_keep BEFORE DELETE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'sessions cannot end'); END"
            )
            return lambda: None  # dropped with its table
        conn.exec_driver_sql(
            f"CREATE FUNCTION {table}_keep() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'sessions cannot end' USING ERRCODE = '23000'; END $$"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_keep BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_keep()"
        )

    def undo() -> None:
        with storage.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP FUNCTION {table}_keep() CASCADE")

    return undo


def test_a_password_change_that_cannot_end_the_other_sessions_changes_nothing(
    app: Flask, lucia: Lucia
) -> None:
    user = make_user(lucia)
    _, tokens = lucia.create_session(user.user_id)
    undo = refuse_ending_sessions(app)
    try:
        with pytest.raises(sa.exc.IntegrityError):
            lucia.update_user_password(user.user_id, "a new password")
    finally:
        undo()
    assert lucia.authenticate_user("email", "ann@example.com", PASSWORD) == user
    lucia.validate_access_token(tokens.access_token)


def test_update_user_password_to_none_removes_it(lucia: Lucia) -> None:
    user = make_user(lucia)
    lucia.update_user_password(user.user_id, None)
    with pytest.raises(LuciaError) as excinfo:
        lucia.authenticate_user("email", "ann@example.com", PASSWORD)
    assert error_code(excinfo) == "AUTH_INVALID_PASSWORD"


def test_update_user_password_of_an_unknown_user_raises_invalid_user_id(lucia: Lucia) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.update_user_password("nobody", "a new password")
    assert error_code(excinfo) == "AUTH_INVALID_USER_ID"


def test_update_user_provider_id_rekeys_the_user(lucia: Lucia) -> None:
    user = make_user(lucia)
    lucia.update_user_provider_id(user.user_id, "email", "new@example.com")
    assert lucia.get_user_by_provider_id("email", "new@example.com").user_id == user.user_id


def test_update_user_provider_id_to_a_taken_one_raises_duplicate_provider_id(
    lucia: Lucia,
) -> None:
    make_user(lucia, "a@example.com")
    bob = make_user(lucia, "b@example.com")
    with pytest.raises(LuciaError) as excinfo:
        lucia.update_user_provider_id(bob.user_id, "email", "a@example.com")
    assert error_code(excinfo) == "AUTH_DUPLICATE_PROVIDER_ID"


def test_update_user_provider_id_of_an_unknown_user_raises_invalid_user_id(
    lucia: Lucia,
) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.update_user_provider_id("nobody", "email", "x@example.com")
    assert error_code(excinfo) == "AUTH_INVALID_USER_ID"


def test_delete_user_removes_the_user_and_its_sessions(app: Flask, lucia: Lucia) -> None:
    user = make_user(lucia)
    lucia.create_session(user.user_id)
    lucia.delete_user(user.user_id)
    with pytest.raises(LuciaError):
        lucia.get_user(user.user_id)
    assert all_rows(app) == []


def test_delete_user_is_idempotent(lucia: Lucia) -> None:
    assert lucia.delete_user("nobody") is None


# -- sessions ----------------------------------------------------------------------


def test_create_session_returns_a_session_and_tokens_with_cookies(lucia: Lucia) -> None:
    user = make_user(lucia)
    session, tokens = lucia.create_session(user.user_id)
    assert isinstance(session, Session) and isinstance(tokens, Tokens)
    assert session.user_id == user.user_id and session.fresh is False
    assert session.expires.tzinfo is timezone.utc
    assert session.expires > datetime.now(timezone.utc)
    assert tokens.access_token != tokens.refresh_token
    assert tokens.cookies[0].startswith("lucia_access_token=" + tokens.access_token)
    assert tokens.cookies[1].startswith("lucia_refresh_token=" + tokens.refresh_token)


def test_tokens_repr_does_not_show_the_tokens(lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    assert tokens.access_token not in repr(tokens)


def test_create_session_for_an_unknown_user_raises_invalid_user_id_and_writes_nothing(
    app: Flask, lucia: Lucia
) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.create_session("nobody")
    assert error_code(excinfo) == "AUTH_INVALID_USER_ID"
    assert all_rows(app) == []


def test_validate_access_token_returns_its_session(lucia: Lucia) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    assert lucia.validate_access_token(tokens.access_token).session_id == session.session_id


@pytest.mark.parametrize(
    "token", ["", "short", "x" * 32 + "y", "é" * 32, "a" * 31 + "!", "a" * 10_000]
)
def test_validate_access_token_rejects_malformed_tokens(lucia: Lucia, token: str) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.validate_access_token(token)
    assert error_code(excinfo) == "AUTH_INVALID_ACCESS_TOKEN"


def test_expired_access_token_is_invalid(lucia: Lucia, clock: Clock) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    clock.advance(15 * 60 + 1)
    with pytest.raises(LuciaError) as excinfo:
        lucia.validate_access_token(tokens.access_token)
    assert error_code(excinfo) == "AUTH_INVALID_ACCESS_TOKEN"


def test_a_fresh_session_goes_stale_after_fresh_for(lucia: Lucia, clock: Clock) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id, fresh=True)
    assert lucia.validate_access_token(tokens.access_token).fresh
    clock.advance(10 * 60 + 1)
    assert not lucia.validate_access_token(tokens.access_token).fresh


def test_validate_refresh_token_returns_the_user_id(lucia: Lucia) -> None:
    user = make_user(lucia)
    _, tokens = lucia.create_session(user.user_id)
    assert lucia.validate_refresh_token(tokens.refresh_token) == user.user_id


def test_validate_refresh_token_does_not_rotate(lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    lucia.validate_refresh_token(tokens.refresh_token)
    lucia.validate_access_token(tokens.access_token)


def test_validate_refresh_token_rejects_an_unknown_token(lucia: Lucia) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.validate_refresh_token(generate_random_string(32))
    assert error_code(excinfo) == "AUTH_INVALID_REFRESH_TOKEN"


def test_validate_refresh_token_rejects_a_token_spent_beyond_the_grace_and_succeeded(
    lucia: Lucia, clock: Clock
) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    _, successor = lucia.refresh_session(tokens.refresh_token)
    lucia.refresh_session(successor.refresh_token)  # the successor was used
    clock.advance(31)
    with pytest.raises(LuciaError):
        lucia.validate_refresh_token(tokens.refresh_token)


def test_refresh_session_rotates_both_tokens_in_the_same_session(lucia: Lucia) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    new_session, new_tokens = lucia.refresh_session(tokens.refresh_token)
    assert new_session.session_id == session.session_id
    assert new_tokens.access_token != tokens.access_token
    assert new_tokens.refresh_token != tokens.refresh_token
    assert lucia.validate_access_token(new_tokens.access_token).session_id == session.session_id


def test_refresh_session_kills_the_old_access_token(lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    lucia.refresh_session(tokens.refresh_token)
    with pytest.raises(LuciaError) as excinfo:
        lucia.validate_access_token(tokens.access_token)
    assert error_code(excinfo) == "AUTH_INVALID_ACCESS_TOKEN"


def test_refresh_session_sends_session_refreshed(lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    seen: list[Session] = []
    with signals.session_refreshed.connected_to(lambda app, session: seen.append(session)):
        session, _ = lucia.refresh_session(tokens.refresh_token)
    assert seen == [session]


def test_a_spent_refresh_token_within_the_grace_gets_the_same_live_pair(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, first = lucia.refresh_session(tokens.refresh_token)
    clock.advance(29)
    again_session, again = lucia.refresh_session(tokens.refresh_token)
    assert again_session.session_id == session.session_id
    assert (again.access_token, again.refresh_token) == (first.access_token, first.refresh_token)
    lucia.validate_access_token(again.access_token)


def test_a_grace_replay_follows_the_chain_to_the_live_pair(lucia: Lucia, clock: Clock) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    _, first = lucia.refresh_session(tokens.refresh_token)
    _, second = lucia.refresh_session(first.refresh_token)
    clock.advance(5)
    _, replayed = lucia.refresh_session(tokens.refresh_token)
    assert replayed.access_token == second.access_token
    lucia.validate_access_token(replayed.access_token)


def test_a_spent_refresh_token_after_the_grace_revokes_the_session(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, current = lucia.refresh_session(tokens.refresh_token)
    clock.advance(5 * 60 + 1)  # past the grace and the touch interval
    lucia.validate_access_token(current.access_token)  # the successor is in use
    reused: list[str] = []
    with (
        signals.refresh_token_reused.connected_to(
            lambda app, session_id, user_id: reused.append(session_id)
        ),
        pytest.raises(LuciaError) as excinfo,
    ):
        lucia.refresh_session(tokens.refresh_token)
    assert error_code(excinfo) == "AUTH_INVALID_REFRESH_TOKEN"
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(current.access_token)
    with pytest.raises(LuciaError):
        lucia.refresh_session(current.refresh_token)


def test_refresh_session_after_the_idle_lifetime_fails(lucia: Lucia, clock: Clock) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    clock.advance(14 * 24 * 3600 + 1)
    with pytest.raises(LuciaError) as excinfo:
        lucia.refresh_session(tokens.refresh_token)
    assert error_code(excinfo) == "AUTH_INVALID_REFRESH_TOKEN"


def test_refresh_never_extends_a_session_past_its_absolute_max_age(
    lucia: Lucia, clock: Clock
) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    for _ in range(3):  # every 10 days: idle lifetime never runs out
        clock.advance(10 * 24 * 3600)
        try:
            _, tokens = lucia.refresh_session(tokens.refresh_token)
        except LuciaError as error:
            assert error.code == "AUTH_INVALID_REFRESH_TOKEN"
            break
    else:
        pytest.fail("a session outlived LUCIA_SESSION_MAX_AGE")


@pytest.mark.parametrize("token", ["", "nope", "é" * 32, None, 12])
def test_refresh_session_rejects_malformed_tokens(lucia: Lucia, token: Any) -> None:
    with pytest.raises(LuciaError) as excinfo:
        lucia.refresh_session(token)
    assert error_code(excinfo) == "AUTH_INVALID_REFRESH_TOKEN"


# -- refresh chains: lost answers, bounded rows, wiped seals, token families ------------

GRACE_MS = 30_000
TOUCH = 5 * 60  # LUCIA_TOUCH_INTERVAL, seconds


class RefreshRow(NamedTuple):
    digest: str
    session_id: str
    expires_at: int
    spent_at: int | None
    successor: bytes | None


def refresh_rows(app: Flask, session_id: str | None = None) -> list[RefreshRow]:
    """The refresh token table (of one session), as a copy of the database holds it."""
    table = app.extensions["lucia"].storage.refresh_tokens
    statement = sa.select(table)
    if session_id is not None:
        statement = statement.where(table.c.session_id == session_id)
    with app.extensions["lucia"].storage.engine.connect() as conn:
        return [RefreshRow(*row) for row in conn.execute(statement)]


def reuse_signals() -> Any:
    """A context manager collecting the session ids ``refresh_token_reused`` names."""
    seen: list[str] = []
    recorder = signals.refresh_token_reused.connected_to(
        lambda app, session_id, user_id: seen.append(session_id)
    )
    return recorder, seen


def test_a_lost_refresh_answer_is_recovered_after_the_grace_in_the_same_session(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, lost = lucia.refresh_session(tokens.refresh_token)  # the answer never arrives
    clock.advance(60)
    recorder, reused = reuse_signals()
    with recorder:
        again_session, again = lucia.refresh_session(tokens.refresh_token)
    assert reused == []
    assert again_session.session_id == session.session_id
    assert again.refresh_token not in (tokens.refresh_token, lost.refresh_token)
    assert lucia.validate_access_token(again.access_token).session_id == session.session_id
    with pytest.raises(LuciaError):
        lucia.validate_access_token(lost.access_token)  # the unused pair is retired


def test_a_lost_answer_recovered_twice_still_works(lucia: Lucia, clock: Clock) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    lucia.refresh_session(tokens.refresh_token)
    clock.advance(60)
    lucia.refresh_session(tokens.refresh_token)  # that answer is lost too
    clock.advance(60)
    _, again = lucia.refresh_session(tokens.refresh_token)
    assert lucia.validate_access_token(again.access_token).session_id == session.session_id


def test_validate_refresh_token_accepts_the_token_of_a_lost_answer(
    lucia: Lucia, clock: Clock
) -> None:
    user = make_user(lucia)
    _, tokens = lucia.create_session(user.user_id)
    lucia.refresh_session(tokens.refresh_token)
    clock.advance(60)
    assert lucia.validate_refresh_token(tokens.refresh_token) == user.user_id


def test_presenting_the_retired_successor_of_a_lost_answer_revokes_the_session(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, lost = lucia.refresh_session(tokens.refresh_token)
    clock.advance(60)
    _, recovered = lucia.refresh_session(tokens.refresh_token)
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(lost.refresh_token)  # whoever holds it is not the recoverer
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(recovered.access_token)


def test_a_thief_replaying_an_unused_predecessor_is_caught_at_the_owners_next_refresh(
    lucia: Lucia, clock: Clock
) -> None:
    session, stolen = lucia.create_session(make_user(lucia).user_id)
    _, owners = lucia.refresh_session(stolen.refresh_token)
    clock.advance(60)
    _, thiefs = lucia.refresh_session(stolen.refresh_token)  # looks like a lost answer
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(owners.refresh_token)  # the owner's next request
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(thiefs.access_token)


def test_a_replay_after_the_grace_revokes_once_the_successor_was_refreshed(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, successor = lucia.refresh_session(tokens.refresh_token)
    clock.advance(60)
    _, live = lucia.refresh_session(successor.refresh_token)
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(tokens.refresh_token)
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(live.access_token)


def test_a_replay_after_the_grace_revokes_once_the_successors_access_token_was_used(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, successor = lucia.refresh_session(tokens.refresh_token)
    clock.advance(TOUCH + 1)
    lucia.validate_access_token(successor.access_token)  # marks the session used
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(tokens.refresh_token)
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(successor.access_token)


def test_three_hundred_fast_refreshes_leave_at_most_five_refresh_rows(
    app: Flask, lucia: Lucia
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    for _ in range(300):
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    rows = refresh_rows(app, session.session_id)
    print(f"\nrefresh rows of a session after 300 refreshes: {len(rows)}")
    assert len(rows) <= SPENT_KEPT + 2 == 5
    lucia.validate_access_token(tokens.access_token)


def test_refreshes_a_grace_apart_leave_three_refresh_rows(
    app: Flask, lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    for _ in range(20):
        clock.advance(31)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    # the live token, its predecessor, the family row
    assert len(refresh_rows(app, session.session_id)) == 3


def test_after_many_refreshes_a_replay_of_the_predecessor_still_revokes(
    lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    for _ in range(300):  # a rotation each time: at most SPENT_KEPT within the grace
        clock.advance(11)
        predecessor = tokens
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    clock.advance(TOUCH + 1)
    lucia.validate_access_token(tokens.access_token)  # the live pair is in use
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(predecessor.refresh_token)
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(tokens.access_token)


def test_after_many_refreshes_a_replay_of_the_first_token_still_revokes(
    app: Flask, lucia: Lucia, clock: Clock
) -> None:
    session, first = lucia.create_session(make_user(lucia).user_id)
    tokens = first
    for _ in range(300):  # a rotation each time: at most SPENT_KEPT within the grace
        clock.advance(11)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    assert digest(first.refresh_token) not in {r.digest for r in refresh_rows(app)}
    clock.advance(31)
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(first.refresh_token)  # no row left: known by its family
    assert reused == [session.session_id]
    with pytest.raises(LuciaError):
        lucia.validate_access_token(tokens.access_token)


def test_a_replay_as_many_rotations_behind_as_kept_gets_the_live_pair(lucia: Lucia) -> None:
    _, first = lucia.create_session(make_user(lucia).user_id)
    tokens = first
    for _ in range(SPENT_KEPT):
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    _, again = lucia.refresh_session(first.refresh_token)
    assert again.access_token == tokens.access_token


def test_a_token_that_was_never_issued_revokes_nothing(lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    with pytest.raises(LuciaError):
        lucia.refresh_session(new_refresh_token())
    lucia.validate_access_token(tokens.access_token)


def test_a_session_without_a_family_row_gets_one_at_its_next_rotation(
    app: Flask, lucia: Lucia, clock: Clock
) -> None:
    session, first = lucia.create_session(make_user(lucia).user_id)
    table = app.extensions["lucia"].storage.refresh_tokens
    with app.extensions["lucia"].storage.engine.begin() as conn:  # as made before families
        conn.execute(table.delete().where(table.c.digest == family_digest(first.refresh_token)))
    _, tokens = lucia.refresh_session(first.refresh_token)
    for _ in range(5):
        _, tokens = lucia.refresh_session(tokens.refresh_token)
    clock.advance(31)
    recorder, reused = reuse_signals()
    with recorder, pytest.raises(LuciaError):
        lucia.refresh_session(first.refresh_token)
    assert reused == [session.session_id]


def test_a_sealed_successor_is_wiped_by_the_next_rotation_after_its_grace(
    app: Flask, lucia: Lucia, clock: Clock
) -> None:
    session, tokens = lucia.create_session(make_user(lucia).user_id)
    _, tokens = lucia.refresh_session(tokens.refresh_token)
    clock.advance(31)  # that successor's grace has passed
    lucia.refresh_session(tokens.refresh_token)
    now = int(clock.now * 1000)
    rows = refresh_rows(app, session.session_id)
    sealed = [r for r in rows if r.successor is not None and r.spent_at is not None]
    assert sealed
    assert all(now - r.spent_at <= GRACE_MS for r in sealed if r.spent_at is not None)
    # the live token carries only its own pair, sealed under itself
    (live,) = [r for r in rows if r.spent_at is None]
    assert live.successor is not None


def open_seals(rows: list[RefreshRow], tokens: set[str]) -> set[str]:
    """Every token an attacker opens from ``tokens`` and a copy of the refresh table."""
    opened = set(tokens)
    while True:
        found = {
            token
            for row in rows
            if row.successor is not None
            for held in opened
            if digest(held) == row.digest
            for token in unseal(held, row.successor)
        }
        if found <= opened:
            return opened
        opened |= found


def test_old_refresh_tokens_and_a_copy_of_the_database_open_no_live_token(
    app: Flask, lucia: Lucia, clock: Clock
) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    issued = [tokens]
    for _ in range(40):
        clock.advance(15 * 60)
        _, tokens = lucia.refresh_session(tokens.refresh_token)
        issued.append(tokens)
    *old, _predecessor, live = issued  # the predecessor opens the live pair within its grace
    opened = open_seals(refresh_rows(app), {t.refresh_token for t in old})
    assert live.access_token not in opened
    assert live.refresh_token not in opened


def test_invalidate_session_ends_it(lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    lucia.invalidate_session(tokens.access_token)
    with pytest.raises(LuciaError):
        lucia.validate_access_token(tokens.access_token)
    with pytest.raises(LuciaError):
        lucia.refresh_session(tokens.refresh_token)


@pytest.mark.parametrize("token", ["", "garbage", generate_random_string(32)])
def test_invalidate_session_is_idempotent(lucia: Lucia, token: str) -> None:
    assert lucia.invalidate_session(token) is None


def test_invalidate_all_user_sessions_ends_every_session_of_that_user(lucia: Lucia) -> None:
    ann, bob = make_user(lucia, "a@example.com"), make_user(lucia, "b@example.com")
    ann_tokens = [lucia.create_session(ann.user_id)[1] for _ in range(2)]
    _, bob_tokens = lucia.create_session(bob.user_id)
    lucia.invalidate_all_user_sessions(ann.user_id)
    for tokens in ann_tokens:
        with pytest.raises(LuciaError):
            lucia.validate_access_token(tokens.access_token)
    lucia.validate_access_token(bob_tokens.access_token)


def test_invalidate_user_session_ends_only_that_device(lucia: Lucia) -> None:
    user = make_user(lucia)
    phone, phone_tokens = lucia.create_session(user.user_id)
    _, laptop_tokens = lucia.create_session(user.user_id)
    lucia.invalidate_user_session(user.user_id, phone.session_id)
    with pytest.raises(LuciaError):
        lucia.validate_access_token(phone_tokens.access_token)
    lucia.validate_access_token(laptop_tokens.access_token)


def test_invalidate_user_session_needs_the_owner(lucia: Lucia) -> None:
    ann, bob = make_user(lucia, "a@example.com"), make_user(lucia, "b@example.com")
    session, tokens = lucia.create_session(ann.user_id)
    lucia.invalidate_user_session(bob.user_id, session.session_id)
    lucia.validate_access_token(tokens.access_token)


def test_get_user_sessions_lists_the_devices_newest_first(lucia: Lucia, clock: Clock) -> None:
    user = make_user(lucia)
    first, _ = lucia.create_session(user.user_id)
    clock.advance(1)
    second, _ = lucia.create_session(user.user_id)
    listed = lucia.get_user_sessions(user.user_id)
    assert [s.session_id for s in listed] == [second.session_id, first.session_id]
    assert listed[0].expires == second.expires


def test_delete_expired_user_sessions_removes_only_that_users_expired_ones(
    lucia: Lucia, clock: Clock
) -> None:
    ann, bob = make_user(lucia, "a@example.com"), make_user(lucia, "b@example.com")
    lucia.create_session(ann.user_id)
    lucia.create_session(bob.user_id)
    clock.advance(15 * 24 * 3600)
    _, live = lucia.create_session(ann.user_id)
    lucia.delete_expired_user_sessions(ann.user_id)
    assert len(lucia.get_user_sessions(ann.user_id)) == 1
    assert len(lucia.get_user_sessions(bob.user_id)) == 1
    lucia.validate_access_token(live.access_token)


def test_delete_expired_sessions_returns_the_rows_removed(lucia: Lucia, clock: Clock) -> None:
    ann, bob = make_user(lucia, "a@example.com"), make_user(lucia, "b@example.com")
    lucia.create_session(ann.user_id)
    lucia.create_session(bob.user_id)
    clock.advance(15 * 24 * 3600)
    lucia.create_session(ann.user_id)
    # two expired sessions, each with one access and one refresh token row and a family row
    assert lucia.delete_expired_sessions() == 8
    assert lucia.delete_expired_sessions() == 0


@pytest.mark.parametrize("batch_size", [1, 2, 3, 10_000])
def test_expired_batches_remove_the_same_rows_whatever_the_batch_size(
    lucia: Lucia, clock: Clock, batch_size: int
) -> None:
    ann = make_user(lucia, "a@example.com")
    for _ in range(3):
        lucia.create_session(ann.user_id)
    clock.advance(16 * 60)
    lucia.create_session(ann.user_id)  # live, with live tokens
    clock.advance(14 * 24 * 3600 - 8 * 60)  # the first three idle out; the last one lives
    batches = list(lucia.auth.expired_batches(batch_size))
    # three sessions with two tokens and a family row; the live access token
    assert sum(batches) == 3 * 4 + 1
    assert len(batches) == (3 if batch_size == 1 else 2 if batch_size == 2 else 1)
    assert len(lucia.get_user_sessions(ann.user_id)) == 1


@pytest.mark.parametrize("batch_size", [0, 10_001, True, 2.0])
def test_a_batch_size_out_of_range_is_a_value_error(lucia: Lucia, batch_size: Any) -> None:
    with pytest.raises(ValueError, match="limit must be an int from 1 to 10000"):
        next(lucia.auth.expired_batches(batch_size))


# -- storage properties ------------------------------------------------------------


def test_a_copy_of_the_database_holds_no_raw_token(app: Flask, lucia: Lucia) -> None:
    _, tokens = lucia.create_session(make_user(lucia).user_id)
    _, rotated = lucia.refresh_session(tokens.refresh_token)
    raw = {
        tokens.access_token,
        tokens.refresh_token,
        rotated.access_token,
        rotated.refresh_token,
    }
    cells = [cell for row in all_rows(app) for cell in row]
    dump = " ".join(
        cell.decode("latin-1") if isinstance(cell, bytes) else str(cell) for cell in cells
    )
    assert not any(token in dump for token in raw)
    assert digest(rotated.access_token) in dump


def test_a_failed_write_leaves_no_partial_rows(app: Flask, lucia: Lucia) -> None:
    make_user(lucia, "a@example.com", username="ann")
    before = all_rows(app)
    with pytest.raises(LuciaError):
        make_user(lucia, "b@example.com", username="ann")
    assert all_rows(app) == before
