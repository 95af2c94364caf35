"""TOTP secrets at rest (DESIGN §18, issue 18 item 7): stored encrypted under
``LUCIA_SECRET_KEYS`` (default: derived from ``SECRET_KEY``), bound to their row,
rotatable, and encrypted in place by ``upgrade-db`` when an older release stored them
as they are. Several apps share one database here, as a copy of it or a new
deployment with other keys would."""

from __future__ import annotations

import base64
import logging
import secrets
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lucia.core.store.schema import SCHEMA_VERSION

from .conftest import TEST_DATABASE_URL, AppFactory, Clock, unique_prefix
from .test_two_factor import browser, code_at, password_step, turn_on, user_with_totp, with_views

OLD_KEY = "old-" + "k" * 40
NEW_KEY = "new-" + "n" * 40
UNREADABLE = "cannot be checked right now"


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return with_views(make_app())


@pytest.fixture
def shared(tmp_path: Any) -> dict[str, str]:
    """One database (URL and table prefix) that several apps of a test open."""
    return {
        "LUCIA_DATABASE_URL": TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "LUCIA_TABLE_PREFIX": unique_prefix("rest_"),
    }


def app_on(make_app: AppFactory, shared: dict[str, str], **config: Any) -> Flask:
    """An app with the two-factor test views on the shared database."""
    return with_views(make_app(**shared, **config))


def stored(app: Flask) -> dict[Any, str]:
    """The raw ``totp.secret`` column, by user id."""
    table = app.extensions["lucia"].storage.schema.totp
    with app.extensions["lucia"].storage.bare_engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.user_id, table.c.secret)).all())  # type: ignore[arg-type]


def sign_in_with_code(app: Flask, code: str, identifier: str = "ann@example.com") -> Any:
    """A password step as ``identifier`` then the code; the verify answer."""
    client = browser(app)
    from .conftest import PASSWORD

    first = client.post("/auth/sign-in", json={"identifier": identifier, "password": PASSWORD})
    assert first.status_code == 401, first.json
    return client.post("/auth/two-factor/verify", json={"code": code})


# -- stored encrypted -------------------------------------------------------------------------


def test_the_stored_column_holds_no_base32_secret(app: Flask, clock: Clock) -> None:
    secret, _ = user_with_totp(app, clock)

    (column,) = stored(app).values()

    assert secret not in column and secret.lower() not in column.lower()
    assert column.startswith("$1$") and len(column) <= 255


def test_the_default_key_is_hkdf_of_secret_key_with_a_purpose_label(
    make_app: AppFactory, clock: Clock
) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = b"a-secret-key-that-is-long-enough-0123456789"
    app = with_views(make_app(SECRET_KEY=raw.decode()))
    secret, _ = user_with_totp(app, clock)
    ((user_id, column),) = stored(app).items()
    _, _, key_id, payload = column.split("$")
    sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    nonce, body = sealed[:12], sealed[12:]
    aad = f"$1${key_id}".encode() + b"\x00" + str(user_id).encode()
    derived = HKDF(hashes.SHA256(), 32, None, b"flask-lucia totp").derive(raw)

    assert AESGCM(derived).decrypt(nonce, body, aad).decode() == secret
    with pytest.raises(InvalidTag):
        AESGCM(raw[:32]).decrypt(nonce, body, aad)


def test_a_copy_of_the_database_under_another_key_yields_no_secret(
    make_app: AppFactory, shared: dict[str, str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    home = app_on(make_app, shared, LUCIA_SECRET_KEYS=[OLD_KEY])
    secret, codes = user_with_totp(home, clock)
    thief = app_on(make_app, shared, LUCIA_SECRET_KEYS=[NEW_KEY], SECRET_KEY="other")

    with caplog.at_level(logging.ERROR, logger="flask_lucia"):
        answer = sign_in_with_code(thief, code_at(secret, clock))

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_CODE"
    assert UNREADABLE in answer.json["message"]
    assert any("cannot be decrypted" in r.getMessage() for r in caplog.records)
    assert sign_in_with_code(thief, codes[0]).status_code == 200  # recovery codes still work


def test_without_any_key_a_stored_secret_is_a_clear_error(
    make_app: AppFactory, shared: dict[str, str], clock: Clock
) -> None:
    home = app_on(make_app, shared)
    secret, _ = user_with_totp(home, clock)
    keyless = app_on(make_app, shared, SECRET_KEY=None)

    answer = sign_in_with_code(keyless, code_at(secret, clock))

    assert answer.status_code == 400 and UNREADABLE in answer.json["message"]


def test_without_any_key_totp_cannot_be_set_up(make_app: AppFactory) -> None:
    app = with_views(make_app(SECRET_KEY=None))
    client = browser(app)
    from .conftest import sign_up

    sign_up(client)
    answer = client.post("/auth/two-factor", json={})

    page = client.get("/auth/two-factor", headers={"Accept": "text/html"})

    assert answer.status_code == 503
    assert answer.json["message"] == "Two-factor authentication is not available on this site."
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "Two-factor authentication is not available on this site." in page.get_data(True)


# -- rotation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"LUCIA_SECRET_KEYS": [OLD_KEY]}, {"LUCIA_SECRET_KEYS": [NEW_KEY, OLD_KEY]}),
        (
            {"SECRET_KEY": "old secret"},
            {"SECRET_KEY": "new", "SECRET_KEY_FALLBACKS": ["old secret"]},
        ),
    ],
    ids=["LUCIA_SECRET_KEYS", "SECRET_KEY_FALLBACKS"],
)
def test_a_secret_under_an_old_key_still_verifies_and_moves_to_the_new_key(
    make_app: AppFactory,
    shared: dict[str, str],
    clock: Clock,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    old = app_on(make_app, shared, **before)
    secret, _ = user_with_totp(old, clock)
    sealed_before = set(stored(old).values())
    rotated = app_on(make_app, shared, **after)

    answer = sign_in_with_code(rotated, code_at(secret, clock))

    assert answer.status_code == 200, answer.json
    (sealed_after,) = stored(rotated).values()
    assert sealed_after not in sealed_before  # sealed again with the newest key
    clock.advance(30)
    newest_only = {k: v[:1] if isinstance(v, list) else v for k, v in after.items()}
    newest_only.pop("SECRET_KEY_FALLBACKS", None)
    assert (
        sign_in_with_code(
            app_on(make_app, shared, **newest_only), code_at(secret, clock)
        ).status_code
        == 200
    )


def test_giving_totp_a_key_of_its_own_keeps_the_secrets_made_under_secret_key(
    make_app: AppFactory, shared: dict[str, str], clock: Clock
) -> None:
    default = app_on(make_app, shared, SECRET_KEY="short")
    secret, _ = user_with_totp(default, clock)
    own = app_on(make_app, shared, SECRET_KEY="short", LUCIA_SECRET_KEYS=[NEW_KEY])

    answer = sign_in_with_code(own, code_at(secret, clock))

    (sealed,) = stored(own).values()
    assert answer.status_code == 200, answer.json
    assert sealed.split("$")[2] == own.extensions["lucia_mfa"].box._keys()[0][0]  # NEW_KEY's
    clock.advance(30)
    alone = app_on(make_app, shared, SECRET_KEY="another", LUCIA_SECRET_KEYS=[NEW_KEY])
    assert sign_in_with_code(alone, code_at(secret, clock)).status_code == 200


# -- bound to the row -------------------------------------------------------------------------


def test_a_secret_moved_to_another_users_row_does_not_decrypt(
    app: Flask, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from .conftest import sign_up

    ann_secret, _ = user_with_totp(app, clock)
    bob = browser(app)
    bob_id = sign_up(bob, "bob@example.com")["user"]["user_id"]
    turn_on(bob, clock)
    rows = stored(app)
    ann_sealed = next(v for k, v in rows.items() if k != bob_id)
    table = app.extensions["lucia"].storage.schema.totp
    with app.extensions["lucia"].storage.bare_engine.begin() as conn:
        conn.execute(table.update().where(table.c.user_id == bob_id).values(secret=ann_sealed))

    with caplog.at_level(logging.ERROR, logger="flask_lucia"):
        answer = sign_in_with_code(app, code_at(ann_secret, clock), "bob@example.com")

    assert answer.status_code == 400 and UNREADABLE in answer.json["message"]
    assert any(f"user {bob_id}" in r.getMessage() for r in caplog.records)


# -- upgrade from schema 2 --------------------------------------------------------------------


def as_an_older_release_stored_it(app: Flask, secret: str, version_row: bool = True) -> None:
    """Turn the app's database into what flask-lucia schema 2 left: the version row says
    2 (or there is none: tables made by ``create_all`` that flask-lucia never prepared),
    the column is VARCHAR(64), and the secret is stored as it is."""
    storage = app.extensions["lucia"].storage
    tables = storage.schema
    with storage.bare_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            name = conn.dialect.identifier_preparer.format_table(tables.totp)
            conn.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN secret TYPE VARCHAR(255)")
        conn.execute(tables.totp.update().values(secret=secret))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN secret TYPE VARCHAR(64)")
        conn.execute(tables.schema.update().values(version=2))
        if not version_row:
            conn.execute(tables.schema.delete())


@pytest.mark.parametrize("version_row", [True, False], ids=["version-2-row", "no-version-row"])
def test_upgrade_db_encrypts_a_secret_an_older_release_stored(
    make_app: AppFactory, shared: dict[str, str], clock: Clock, version_row: bool
) -> None:
    first = app_on(make_app, shared)
    secret, _ = user_with_totp(first, clock)
    as_an_older_release_stored_it(first, secret, version_row)
    app = app_on(make_app, shared, LUCIA_CREATE_TABLES=False)
    before = password_step(browser(app))

    result = app.test_cli_runner().invoke(args=["lucia", "upgrade-db"])

    (column,) = stored(app).values()
    assert before.status_code == 503 and "upgrade-db" in before.json["message"]
    assert result.exit_code == 0, result.output
    assert result.output == f"upgraded the schema from version 2 to {SCHEMA_VERSION}\n"
    assert column.startswith("$1$") and secret not in column
    app.extensions["lucia"].storage._engine = None  # a new process would start afresh
    assert sign_in_with_code(app, code_at(secret, clock)).status_code == 200


def test_first_use_encrypts_a_secret_an_older_release_stored(
    make_app: AppFactory, shared: dict[str, str], clock: Clock
) -> None:
    first = app_on(make_app, shared)
    secret, _ = user_with_totp(first, clock)
    as_an_older_release_stored_it(first, secret)
    app = app_on(make_app, shared)

    answer = sign_in_with_code(app, code_at(secret, clock))

    (column,) = stored(app).values()
    assert answer.status_code == 200, answer.json
    assert column.startswith("$1$") and secret not in column


def test_upgrade_db_without_a_key_says_which_key_to_set(
    make_app: AppFactory, shared: dict[str, str], clock: Clock
) -> None:
    first = app_on(make_app, shared)
    secret, _ = user_with_totp(first, clock)
    as_an_older_release_stored_it(first, secret)
    app = app_on(make_app, shared, SECRET_KEY=None, LUCIA_CREATE_TABLES=False)

    result = app.test_cli_runner().invoke(args=["lucia", "upgrade-db"])

    assert result.exit_code == 1
    assert "LUCIA_SECRET_KEYS" in result.output and "SECRET_KEY" in result.output
    assert set(stored(app).values()) == {secret}  # nothing half done


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        "x" * 44,  # one key, not a list of them
        [],
        ["too short"],
        [b"\x00" * 8],
        [42],
        ["y" * 44, "y" * 44],
        {"key": "z" * 44},
    ],
)
def test_bad_lucia_secret_keys_are_refused_at_init_app(make_app: AppFactory, keys: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="LUCIA_SECRET_KEYS"):
        make_app(LUCIA_SECRET_KEYS=keys)


def test_good_lucia_secret_keys_are_accepted_and_never_shown(make_app: AppFactory) -> None:
    key = secrets.token_urlsafe(32)
    app = make_app(LUCIA_SECRET_KEYS=[key, key.encode() + b"-older"])

    mfa = app.extensions["lucia_mfa"]
    assert mfa.box is not None
    assert key not in repr(mfa.settings) and key not in repr(mfa.box)
