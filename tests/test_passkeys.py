"""Passkeys (DESIGN §15) through the test client, with a software authenticator: the
ceremonies, the stored credentials, and every bad response refused with a 400 that
stores nothing and signs nobody in. Chromium's virtual authenticator: test_browser_passkeys."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import signals
from flask_lucia.testing import sign_in_client

from .conftest import ORIGIN, AppFactory, cookie, sign_up
from .soft_authenticator import SoftAuthenticator, b64, unb64
from .test_two_factor import browser, password_step, turn_on, with_views

JSON = {"Accept": "application/json"}


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return with_views(make_app())


def register(client: FlaskClient, key: SoftAuthenticator, name: str | None = None) -> Any:
    """Register a passkey of ``key`` for the client's (fresh) user; the answer."""
    options = client.post("/auth/passkeys/register/options", json={}).json
    body: dict[str, Any] = {"credential": key.create(options)}
    if name is not None:
        body["name"] = name
    return client.post("/auth/passkeys/register/verify", json=body)


def ann_with_passkey(app: Flask) -> tuple[SoftAuthenticator, Any]:
    """Ann, signed up with one passkey; her authenticator and the passkey's JSON."""
    client = browser(app)
    user = sign_up(client)["user"]
    key = SoftAuthenticator()
    answer = register(client, key, "Laptop")
    assert answer.status_code == 201, answer.json
    return key, {**answer.json["passkey"], "user_id": user["user_id"]}


def sign_in_options(client: FlaskClient) -> Any:
    answer = client.post("/auth/passkeys/sign-in/options", json={})
    assert answer.status_code == 200, answer.json
    return answer.json


def passkey_sign_in(client: FlaskClient, key: SoftAuthenticator, **bend: Any) -> Any:
    """A whole passkey sign-in from a browser with no session: options, then the answer."""
    options = sign_in_options(client)
    return client.post(
        "/auth/passkeys/sign-in/verify", json={"credential": key.get(options, **bend)}
    )


def table(app: Flask, name: str) -> list[tuple[Any, ...]]:
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(getattr(storage.schema, name)))]


def nothing_happened(app: Flask, client: FlaskClient, before: dict[str, Any]) -> bool:
    """No session for the client, and no passkey or session row changed."""
    now = {name: table(app, name) for name in ("passkeys", "sessions")}
    return client.get("/whoami").json["user"] is None and now == before


def snapshot(app: Flask) -> dict[str, Any]:
    return {name: table(app, name) for name in ("passkeys", "sessions")}


#: What a person is told when the WebAuthn library refuses a response.
REFUSED = "This passkey could not be checked. Try again, or use another sign-in method."


def assert_refused_in_the_users_words(
    answer: Any, caplog: pytest.LogCaptureFixture, detail: str
) -> None:
    """The answer says ``REFUSED`` and nothing of the library's reason, which names
    ``detail`` (e.g. "origin") and went to the log instead."""
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("flask_lucia")]
    reasons = [m for m in logged if "refused by the verifier" in m and detail in m]
    assert answer.json["message"] == REFUSED, answer.json
    assert detail not in answer.get_data(as_text=True), "the library's reason reached the user"
    assert len(reasons) == 1, f"the reason was not logged once: {logged}"


# -- registration --------------------------------------------------------------------------


def test_registration_options_need_a_fresh_session(app: Flask) -> None:
    user = sign_up(browser(app))["user"]
    stale = browser(app)
    sign_in_client(stale, user["user_id"], fresh=False)

    answer = stale.post("/auth/passkeys/register/options", json={})

    assert answer.status_code == 401 and answer.json["fresh_required"] is True


def test_registration_options_ask_for_a_discoverable_key_with_user_verification(
    app: Flask,
) -> None:
    client = browser(app)
    sign_up(client)

    options = client.post("/auth/passkeys/register/options", json={}).json

    assert options["rp"] == {"id": "localhost", "name": "localhost"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["user"]["name"] == "ann@example.com"
    assert len(unb64(options["user"]["id"])) == 32
    assert b"ann" not in unb64(options["user"]["id"])


def test_a_registered_passkey_is_listed_with_its_name_transports_and_times(app: Flask) -> None:
    client = browser(app)
    sign_up(client)

    answer = register(client, SoftAuthenticator(), "  My   laptop ")
    listed = client.get("/auth/passkeys", headers=JSON).json["passkeys"]

    assert answer.status_code == 201
    assert listed == [answer.json["passkey"]]
    assert listed[0]["name"] == "My laptop" and listed[0]["transports"] == ["internal"]
    assert isinstance(listed[0]["created_at"], int) and listed[0]["last_used_at"] is None
    assert set(listed[0]) == {"id", "name", "transports", "created_at", "last_used_at"}


def test_a_passkey_is_stored_with_its_key_count_and_a_random_user_handle(app: Flask) -> None:
    client = browser(app)
    user = sign_up(client)["user"]
    first, second = SoftAuthenticator(), SoftAuthenticator()
    register(client, first)
    register(client, second)

    rows = table(app, "passkeys")

    handles = {row[3] for row in rows}
    assert len(rows) == 2 and len(handles) == 1  # one random handle per user
    assert handles == {b64(first.credentials[0].user_handle)}
    assert user["user_id"] not in handles.pop()
    assert all(row[4] and row[5] == 0 for row in rows)  # public key, sign count


def test_registering_a_passkey_twice_is_refused(app: Flask) -> None:
    client = browser(app)
    sign_up(client)
    key = SoftAuthenticator()
    register(client, key)
    options = client.post("/auth/passkeys/register/options", json={}).json
    again = key.create(options, credential_id=key.credentials[0].credential_id)

    answer = client.post("/auth/passkeys/register/verify", json={"credential": again})

    assert answer.status_code == 400
    assert answer.json["message"] == "This passkey is already registered."
    assert len(table(app, "passkeys")) == 1
    assert options["excludeCredentials"][0]["id"] == b64(key.credentials[0].credential_id)


def test_registration_sends_passkey_registered_once(app: Flask) -> None:
    seen: list[str] = []
    receiver = signals.passkey_registered.connect_via(app)(
        lambda _app, user, passkey: seen.append(passkey.name)
    )
    client = browser(app)
    sign_up(client)

    register(client, SoftAuthenticator(), "Phone")

    assert seen == ["Phone"]
    del receiver


# -- sign-in --------------------------------------------------------------------------------


def test_a_passkey_signs_in_with_no_username_fresh_and_as_mfa(app: Flask) -> None:
    key, passkey = ann_with_passkey(app)
    client = browser(app)

    answer = passkey_sign_in(client, key)

    assert answer.status_code == 200, answer.json
    assert answer.json["user"]["user_id"] == passkey["user_id"]
    assert client.get("/whoami").json == {"user": passkey["user_id"], "mfa": True}
    assert client.get("/vault").status_code == 200
    assert client.post("/auth/two-factor", json={}).status_code == 200  # fresh
    assert cookie(client, "lucia_webauthn") is None


def test_sign_in_options_ask_for_any_passkey_of_the_site(app: Flask) -> None:
    options = sign_in_options(browser(app))
    assert options["rpId"] == "localhost" and options["allowCredentials"] == []
    assert options["userVerification"] == "required"


def test_a_passkey_sign_in_records_the_sign_count_and_last_use(app: Flask) -> None:
    key, _ = ann_with_passkey(app)
    client = browser(app)

    passkey_sign_in(client, key)

    listed = client.get("/auth/passkeys", headers=JSON).json["passkeys"]
    assert listed[0]["last_used_at"] is not None
    assert table(app, "passkeys")[0][5] == 1


def test_a_sign_count_that_goes_backwards_is_refused_and_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = ann_with_passkey(app)
    passkey_sign_in(browser(app), key, sign_count=7)
    client = browser(app)
    before = snapshot(app)

    with caplog.at_level(logging.WARNING, logger="flask_lucia"):
        answer = passkey_sign_in(client, key, sign_count=3)

    assert answer.status_code == 400 and "counter" in answer.json["message"]
    assert nothing_happened(app, client, before)
    assert any("sign count 3 after 7" in r.getMessage() for r in caplog.records)


def test_a_passkey_that_is_not_registered_is_refused(app: Flask) -> None:
    ann_with_passkey(app)
    stranger = SoftAuthenticator()
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": b64(b"x" * 32)}, "challenge": ""})
    client = browser(app)
    before = snapshot(app)

    answer = passkey_sign_in(client, stranger)

    assert answer.status_code == 400 and "not registered" in answer.json["message"]
    assert nothing_happened(app, client, before)


def test_a_deleted_passkey_no_longer_signs_in(app: Flask) -> None:
    key, passkey = ann_with_passkey(app)
    owner = browser(app)
    sign_in_client(owner, passkey["user_id"])

    deleted = owner.delete(f"/auth/passkeys/{passkey['id']}")
    client = browser(app)
    answer = passkey_sign_in(client, key)

    assert deleted.status_code == 200 and deleted.json == {"deleted": passkey["id"]}
    assert answer.status_code == 400 and client.get("/whoami").json["user"] is None


def test_a_passkey_sign_in_drops_the_pending_sign_in_of_its_browser(app: Flask, clock: Any) -> None:
    client = browser(app)
    sign_up(client)
    turn_on(client, clock)
    key = SoftAuthenticator()
    register(client, key)
    pending = browser(app)
    password_step(pending)

    answer = passkey_sign_in(pending, key)

    assert answer.status_code == 200
    assert table(app, "pending_sign_ins") == [] and cookie(pending, "lucia_two_factor") is None


# -- bad responses: a clear 400, no session, nothing stored -------------------------------


def test_a_replayed_sign_in_response_is_refused(app: Flask) -> None:
    key, _ = ann_with_passkey(app)
    client = browser(app)
    options = sign_in_options(client)
    nonce = cookie(client, "lucia_webauthn") or ""
    response = key.get(options)
    first = client.post("/auth/passkeys/sign-in/verify", json={"credential": response})
    assert first.status_code == 200
    thief = browser(app)  # has the response and even the browser's challenge cookie
    thief.set_cookie("lucia_webauthn", nonce)
    before = snapshot(app)

    replayed = thief.post("/auth/passkeys/sign-in/verify", json={"credential": response})

    assert replayed.status_code == 400 and "challenge" in replayed.json["message"]
    assert nothing_happened(app, thief, before)


def test_a_replayed_registration_response_stores_nothing(app: Flask) -> None:
    client = browser(app)
    sign_up(client)
    key = SoftAuthenticator()
    options = client.post("/auth/passkeys/register/options", json={}).json
    response = key.create(options)
    client.post("/auth/passkeys/register/verify", json={"credential": response})
    client.delete(f"/auth/passkeys/{table(app, 'passkeys')[0][0]}")

    replayed = client.post("/auth/passkeys/register/verify", json={"credential": response})

    assert replayed.status_code == 400 and table(app, "passkeys") == []


def test_a_sign_in_challenge_from_another_browser_is_refused(app: Flask) -> None:
    key, _ = ann_with_passkey(app)
    victim, attacker = browser(app), browser(app)
    options = sign_in_options(victim)
    sign_in_options(attacker)
    before = snapshot(app)

    answer = attacker.post("/auth/passkeys/sign-in/verify", json={"credential": key.get(options)})

    assert answer.status_code == 400 and "challenge" in answer.json["message"]
    assert nothing_happened(app, attacker, before)


def test_a_registration_challenge_from_another_session_is_refused(app: Flask) -> None:
    client = browser(app)
    user = sign_up(client)["user"]
    other = browser(app)
    sign_in_client(other, user["user_id"])
    options = client.post("/auth/passkeys/register/options", json={}).json

    answer = other.post(
        "/auth/passkeys/register/verify", json={"credential": SoftAuthenticator().create(options)}
    )

    assert answer.status_code == 400 and table(app, "passkeys") == []


def test_sign_in_verify_without_the_challenge_cookie_is_refused(app: Flask) -> None:
    key, _ = ann_with_passkey(app)
    client = browser(app)
    options = sign_in_options(client)
    client.delete_cookie("lucia_webauthn")

    answer = client.post("/auth/passkeys/sign-in/verify", json={"credential": key.get(options)})

    assert answer.status_code == 400 and client.get("/whoami").json["user"] is None


@pytest.mark.parametrize(
    "bend", [{"origin": "https://evil.example"}, {"origin": "http://localhost:5000"}]
)
def test_a_sign_in_from_a_wrong_origin_is_refused(
    app: Flask, bend: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = ann_with_passkey(app)
    client = browser(app)
    before = snapshot(app)

    with caplog.at_level(logging.WARNING, logger="flask_lucia"):
        answer = passkey_sign_in(client, key, **bend)

    assert answer.status_code == 400
    assert_refused_in_the_users_words(answer, caplog, "origin")
    assert nothing_happened(app, client, before)


def test_a_sign_in_for_another_rp_id_is_refused(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = ann_with_passkey(app)
    client = browser(app)
    before = snapshot(app)

    with caplog.at_level(logging.WARNING, logger="flask_lucia"):
        answer = passkey_sign_in(client, key, rp_id="evil.example")

    assert answer.status_code == 400
    assert_refused_in_the_users_words(answer, caplog, "RP ID")
    assert nothing_happened(app, client, before)


@pytest.mark.parametrize("bend", [{"origin": "https://evil.example"}, {"rp_id": "evil.example"}])
def test_a_registration_from_a_wrong_origin_or_rp_id_stores_nothing(
    app: Flask, bend: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = browser(app)
    sign_up(client)
    options = client.post("/auth/passkeys/register/options", json={}).json

    with caplog.at_level(logging.WARNING, logger="flask_lucia"):
        answer = client.post(
            "/auth/passkeys/register/verify",
            json={"credential": SoftAuthenticator().create(options, **bend)},
        )

    assert answer.status_code == 400 and table(app, "passkeys") == []
    assert_refused_in_the_users_words(answer, caplog, "origin" if "origin" in bend else "RP ID")


def _bent(response: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    bent = copy.deepcopy(response)
    *parents, last = path.split(".")
    target = bent
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return bent


MALFORMED = [
    ("id", KeyError),
    ("rawId", "!!not base64!!"),
    ("type", "password"),
    ("response", "nope"),
    ("response.clientDataJSON", b64(b"not json")),
    ("response.clientDataJSON", b64(b'{"type": "webauthn.get"}')),
    ("response.authenticatorData", b64(b"short")),
    ("response.signature", b64(b"\x30\x02\x00\x00")),
    ("response.userHandle", b64(b"someone else")),
    ("response.userHandle", 42),
    ("response.signature", "x" * 20_000),
]


@pytest.mark.parametrize(("path", "value"), MALFORMED)
def test_a_malformed_sign_in_response_is_a_clear_400(app: Flask, path: str, value: Any) -> None:
    key, _ = ann_with_passkey(app)
    client = browser(app)
    options = sign_in_options(client)
    before = snapshot(app)

    answer = client.post(
        "/auth/passkeys/sign-in/verify",
        json={"credential": _bent(key.get(options), path, value)},
    )

    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.json["error"] == "AUTH_INVALID_REQUEST" and answer.json["message"]
    assert nothing_happened(app, client, before)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"credential": "x"},
        {"credential": []},
        {"credential": {}},
        {"credential": {"response": _nested(900)}},
        {"credential": {"response": list(range(1000))}},
    ],
)
def test_a_malformed_body_is_a_clear_400(app: Flask, body: Any) -> None:
    client = browser(app)
    sign_in_options(client)

    answer = client.post("/auth/passkeys/sign-in/verify", json=body)

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_REQUEST"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("response.attestationObject", b64(b"not cbor")),
        ("response.attestationObject", KeyError),
        ("response.clientDataJSON", b64(b'{"type": "webauthn.create", "challenge": "AA"}')),
        ("rawId", b64(b"another id")),
    ],
)
def test_a_malformed_registration_response_stores_nothing(
    app: Flask, path: str, value: Any
) -> None:
    client = browser(app)
    sign_up(client)
    options = client.post("/auth/passkeys/register/options", json={}).json
    response = _bent(SoftAuthenticator().create(options), path, value)

    answer = client.post("/auth/passkeys/register/verify", json={"credential": response})

    assert answer.status_code == 400 and table(app, "passkeys") == []


def test_sign_in_options_from_another_site_are_403(app: Flask) -> None:
    answer = browser(app).post(
        "/auth/passkeys/sign-in/options", json={}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403


# -- list, rename, delete -----------------------------------------------------------------


def test_renaming_a_passkey(app: Flask) -> None:
    _, passkey = ann_with_passkey(app)
    client = browser(app)
    sign_in_client(client, passkey["user_id"])

    answer = client.patch(f"/auth/passkeys/{passkey['id']}", json={"name": "Work laptop"})

    assert answer.status_code == 200 and answer.json["passkey"]["name"] == "Work laptop"
    assert client.get("/auth/passkeys", headers=JSON).json["passkeys"][0]["name"] == "Work laptop"


@pytest.mark.parametrize("name", ["", "   ", None, 7, "x" * 101])
def test_a_bad_passkey_name_is_400(app: Flask, name: Any) -> None:
    _, passkey = ann_with_passkey(app)
    client = browser(app)
    sign_in_client(client, passkey["user_id"])

    answer = client.patch(f"/auth/passkeys/{passkey['id']}", json={"name": name})

    assert answer.status_code == 400
    assert table(app, "passkeys")[0][7] == "Laptop"


def test_another_users_passkey_cannot_be_renamed_or_deleted(app: Flask) -> None:
    _, passkey = ann_with_passkey(app)
    bob = browser(app)
    sign_up(bob, "bob@example.com")

    renamed = bob.patch(f"/auth/passkeys/{passkey['id']}", json={"name": "mine"})
    deleted = bob.delete(f"/auth/passkeys/{passkey['id']}")

    assert renamed.status_code == 404 and deleted.status_code == 404
    assert bob.get("/auth/passkeys", headers=JSON).json == {"passkeys": []}
    assert len(table(app, "passkeys")) == 1 and table(app, "passkeys")[0][7] == "Laptop"


def test_deleting_a_passkey_needs_a_fresh_session(app: Flask) -> None:
    _, passkey = ann_with_passkey(app)
    stale = browser(app)
    sign_in_client(stale, passkey["user_id"], fresh=False)

    answer = stale.delete(f"/auth/passkeys/{passkey['id']}", headers=JSON)

    assert answer.status_code == 401 and len(table(app, "passkeys")) == 1


def test_deleting_a_passkey_sends_passkey_removed_once(app: Flask) -> None:
    _, passkey = ann_with_passkey(app)
    seen: list[str] = []
    receiver = signals.passkey_removed.connect_via(app)(
        lambda _app, user, passkey: seen.append(passkey.id)
    )
    client = browser(app)
    sign_in_client(client, passkey["user_id"])

    client.post(f"/auth/passkeys/{passkey['id']}/delete", json={})
    client.post(f"/auth/passkeys/{passkey['id']}/delete", json={})

    assert seen == [passkey["id"]]
    del receiver


def test_the_passkeys_page_lists_them_with_rename_and_delete_forms(make_app: AppFactory) -> None:
    app = with_views(make_app(WTF_CSRF_ENABLED=False))
    _, passkey = ann_with_passkey(app)
    client = browser(app)
    sign_in_client(client, passkey["user_id"])

    page = client.get("/auth/passkeys").get_data(as_text=True)
    renamed = client.post(f"/auth/passkeys/{passkey['id']}/rename", data={"name": "Desk"})
    deleted = client.post(f"/auth/passkeys/{passkey['id']}/delete", data={})

    assert "Laptop" in page and f"/auth/passkeys/{passkey['id']}/delete" in page
    assert renamed.status_code == 303 and deleted.status_code == 303
    assert table(app, "passkeys") == []


def test_reset_two_factor_deletes_the_users_passkeys(app: Flask) -> None:
    key, _ = ann_with_passkey(app)

    result = app.test_cli_runner().invoke(
        args=["lucia", "reset-two-factor", "email:ann@example.com"]
    )

    assert result.exit_code == 0 and "deleted 1 passkey(s)" in result.output
    assert passkey_sign_in(browser(app), key).status_code == 400


# -- the relying party ----------------------------------------------------------------------


def test_a_configured_rp_id_name_and_origin_are_used(make_app: AppFactory) -> None:
    app = with_views(
        make_app(
            LUCIA_WEBAUTHN_RP_ID="example.com",
            LUCIA_WEBAUTHN_RP_NAME="Example",
            LUCIA_WEBAUTHN_ORIGIN=["https://example.com", "https://www.example.com"],
        )
    )
    client = browser(app)
    sign_up(client)
    key = SoftAuthenticator(origin="https://www.example.com")

    options = client.post("/auth/passkeys/register/options", json={}).json
    registered = client.post(
        "/auth/passkeys/register/verify", json={"credential": key.create(options)}
    )
    signed_in = passkey_sign_in(browser(app), key)
    wrong = passkey_sign_in(browser(app), key, origin=ORIGIN)

    assert options["rp"] == {"id": "example.com", "name": "Example"}
    assert registered.status_code == 201 and signed_in.status_code == 200
    assert wrong.status_code == 400


@pytest.mark.parametrize("origin", ["example.com", "https://a.example/path", 42, []])
def test_a_bad_webauthn_origin_is_refused_at_start_up(make_app: AppFactory, origin: Any) -> None:
    with pytest.raises(ValueError, match="LUCIA_WEBAUTHN_ORIGIN"):
        make_app(LUCIA_WEBAUTHN_ORIGIN=origin)
