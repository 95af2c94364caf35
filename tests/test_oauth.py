"""Sign in with a provider (DESIGN §14), against a real OpenID Connect provider.

The provider is the npm package ``oidc-provider`` on Node (tests/oidc/provider.mjs); the
Flask test client is the app's side of the browser and ``ProviderBrowser`` the provider's
side, so every request between them is the real protocol: nothing is mocked.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_lucia import Lucia
from flask_lucia.oauth.profiles import github_profile, oidc_profile

from .conftest import ORIGIN, AppFactory, cookie, sign_up
from .oidc import OIDCProvider, ProviderBrowser, free_port


def client_of(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


@pytest.fixture
def corp_app(make_app: AppFactory, oidc: OIDCProvider) -> Flask:
    """An app with the generic OpenID Connect provider ``corp``."""
    return make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})


@pytest.fixture
def client(corp_app: Flask) -> FlaskClient:
    return client_of(corp_app)


def start(client: FlaskClient, name: str = "corp", **query: str) -> str:
    """``GET /auth/oauth/<name>``: the provider's authorization URL it redirects to."""
    response = client.get(f"/auth/oauth/{name}", query_string=query)
    assert response.status_code == 302, response.text
    return response.location


def finish(client: FlaskClient, callback: str, *, json: bool = False) -> TestResponse:
    """Open the callback URL the provider sent the browser to, in the app."""
    parts = urlsplit(callback)
    assert parts.netloc == "localhost", callback
    headers = {"Accept": "application/json"} if json else {}
    return client.get(parts.path, query_string=parts.query, headers=headers)


def sign_in_with(
    client: FlaskClient,
    oidc: OIDCProvider,
    login: str = "alice",
    name: str = "corp",
    *,
    json: bool = False,
    **query: str,
) -> TestResponse:
    """The whole round trip: app -> provider (login, consent) -> app's callback."""
    callback = ProviderBrowser(oidc).authorize(start(client, name, **query), login)
    return finish(client, callback, json=json)


def signed_in_user(client: FlaskClient) -> str | None:
    """The user id the client's session belongs to, or None when signed out."""
    response = client.get("/auth/session")
    return response.json["user"]["user_id"] if response.status_code == 200 else None


def keys_of(app: Flask, user_id: str) -> list[str]:
    with app.app_context():
        return app.lucia.get_user_provider_ids(user_id)  # type: ignore[attr-defined,no-any-return]


def user_count(app: Flask) -> int:
    with app.app_context():
        storage = app.extensions["lucia"].storage
        with storage.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(storage.users)).scalar())


# -- the flows -------------------------------------------------------------------------


def test_first_sign_in_creates_the_user_keyed_by_corp_and_the_subject(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    response = sign_in_with(client, oidc, "alice")
    assert response.status_code == 303 and response.location == "/"
    user_id = signed_in_user(client)
    assert user_id is not None
    assert keys_of(corp_app, user_id) == ["corp:alice"]


def test_a_second_sign_in_finds_the_same_user(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    sign_in_with(client, oidc, "alice")
    first = signed_in_user(client)
    client.post("/auth/sign-out")
    assert signed_in_user(client) is None
    assert sign_in_with(client, oidc, "alice").status_code == 303
    assert signed_in_user(client) == first
    assert user_count(corp_app) == 1


def test_the_authorization_request_carries_state_pkce_s256_and_a_nonce(
    client: FlaskClient,
) -> None:
    query = parse_qs(urlsplit(start(client)).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == ["http://localhost/auth/oauth/corp/callback"]


def test_a_signed_in_password_user_gets_the_key_linked(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    user_id = sign_up(client, "ann@example.com")["user"]["user_id"]
    response = sign_in_with(client, oidc, "alice")
    assert response.status_code == 303 and response.location == "/auth/oauth"
    assert keys_of(corp_app, user_id) == ["email:ann@example.com", "corp:alice"]
    client.post("/auth/sign-out")
    sign_in_with(client, oidc, "alice")
    assert signed_in_user(client) == user_id


def test_linking_a_key_that_another_user_has_is_refused(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    sign_in_with(client, oidc, "alice")
    owner = signed_in_user(client)
    other = client_of(corp_app)
    user_id = sign_up(other, "ann@example.com")["user"]["user_id"]
    response = sign_in_with(other, oidc, "alice", json=True)
    assert response.status_code == 400
    assert response.json["error"] == "AUTH_OAUTH_FAILED"
    assert response.json["reason"] == "linked_elsewhere"
    assert keys_of(corp_app, user_id) == ["email:ann@example.com"]
    assert signed_in_user(other) == user_id and owner != user_id


def test_a_safe_next_survives_the_round_trip(client: FlaskClient, oidc: OIDCProvider) -> None:
    response = sign_in_with(client, oidc, next="/private?tab=2")
    assert response.status_code == 303 and response.location == "/private?tab=2"


def test_an_unsafe_next_is_dropped(client: FlaskClient, oidc: OIDCProvider) -> None:
    response = sign_in_with(client, oidc, next="https://evil.example/steal")
    assert response.status_code == 303 and response.location == "/"


def test_json_clients_get_the_session_of_the_new_sign_in(
    client: FlaskClient, oidc: OIDCProvider
) -> None:
    response = sign_in_with(client, oidc, json=True)
    assert response.status_code == 200
    assert response.json["user"]["user_id"] == signed_in_user(client)
    assert response.json["session"]["checksum"]


@pytest.fixture
def people_app(make_app: AppFactory, oidc: OIDCProvider) -> Flask:
    """An app whose users have ``email`` and ``name`` columns."""
    columns = [
        sa.Column("email", sa.String(120), unique=True, nullable=True),
        sa.Column("name", sa.String(64), nullable=True),
    ]
    return make_app(Lucia(user_columns=columns), LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})


def test_a_new_user_gets_the_verified_email_and_the_name_where_columns_exist(
    people_app: Flask, oidc: OIDCProvider
) -> None:
    client = client_of(people_app)
    sign_in_with(client, oidc, "alice")
    with people_app.app_context():
        user = people_app.lucia.get_user(signed_in_user(client))  # type: ignore[attr-defined]
    assert (user.email, user.name) == ("alice@example.com", "Alice Liddell")


def test_an_unverified_email_is_not_kept(people_app: Flask, oidc: OIDCProvider) -> None:
    client = client_of(people_app)
    sign_in_with(client, oidc, "bob")
    with people_app.app_context():
        user = people_app.lucia.get_user(signed_in_user(client))  # type: ignore[attr-defined]
    assert (user.email, user.name) == (None, "Bob")


def test_oauth_user_data_decides_a_new_users_data(make_app: AppFactory, oidc: OIDCProvider) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def user_data(name: str, profile: Any) -> dict[str, Any]:
        seen.append((name, dict(profile)))
        return {"username": profile["username"], "age": 33}

    lucia = Lucia(user_columns=[sa.Column("username", sa.String(32)), sa.Column("age", sa.Integer)])
    lucia.oauth_user_data = user_data
    app = make_app(lucia, LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})
    client = client_of(app)
    sign_in_with(client, oidc, "alice")
    with app.app_context():
        user = app.lucia.get_user(signed_in_user(client))  # type: ignore[attr-defined]
    assert (user.username, user.age) == ("alice", 33)
    [(name, profile)] = seen
    assert name == "corp" and profile["sub"] == "alice"
    assert profile["email"] == "alice@example.com" and profile["email_verified"] is True
    assert profile["raw"]["email"] == "alice@example.com"


def test_oauth_user_data_must_be_callable() -> None:
    with pytest.raises(TypeError, match="oauth_user_data"):
        Lucia(oauth_user_data="username")  # type: ignore[arg-type]


def test_user_data_the_columns_refuse_shows_the_failure_page(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    lucia = Lucia(
        user_columns=[sa.Column("username", sa.String(32))],
        oauth_user_data=lambda name, profile: {"nickname": "x"},
    )
    app = make_app(lucia, LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})
    client = client_of(app)
    response = sign_in_with(client, oidc, json=True)
    assert response.status_code == 400 and response.json["reason"] == "invalid_user_data"
    assert signed_in_user(client) is None and user_count(app) == 0


def test_an_existing_password_account_is_not_taken_over_by_its_email(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    owner = sign_up(client_of(corp_app), "ann@example.com")["user"]["user_id"]
    response = sign_in_with(client, oidc, "ann")  # the provider vouches for ann@example.com
    assert response.status_code == 400
    assert "An account with this email already exists" in response.text
    assert signed_in_user(client) is None
    assert keys_of(corp_app, owner) == ["email:ann@example.com"]
    assert user_count(corp_app) == 1


def test_an_address_in_other_letter_case_still_matches_the_password_account(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    owner = sign_up(client_of(corp_app), "carol@example.com")["user"]["user_id"]
    response = sign_in_with(client, oidc, "carol", json=True)  # Carol@Example.COM, verified
    assert response.status_code == 400 and response.json["reason"] == "account_exists"
    assert keys_of(corp_app, owner) == ["email:carol@example.com"]


def test_link_verified_email_signs_a_verified_email_into_its_password_account(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(
        LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()}, LUCIA_OAUTH_LINK_VERIFIED_EMAIL=True
    )
    owner = sign_up(client_of(app), "ann@example.com")["user"]["user_id"]
    client = client_of(app)
    assert sign_in_with(client, oidc, "ann").status_code == 303
    assert signed_in_user(client) == owner
    assert keys_of(app, owner) == ["email:ann@example.com", "corp:ann"]


def test_link_verified_email_never_links_an_unverified_email(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(
        LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()}, LUCIA_OAUTH_LINK_VERIFIED_EMAIL=True
    )
    owner = sign_up(client_of(app), "bob@example.com")["user"]["user_id"]
    client = client_of(app)
    sign_in_with(client, oidc, "bob")  # the provider does not vouch for bob@example.com
    newcomer = signed_in_user(client)
    assert newcomer is not None and newcomer != owner
    assert keys_of(app, owner) == ["email:bob@example.com"]
    assert keys_of(app, newcomer) == ["corp:bob"]


def test_closed_sign_up_refuses_new_users_but_signs_in_linked_keys(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()}, LUCIA_SIGN_UP=False)
    client = client_of(app)
    response = sign_in_with(client, oidc, "alice", json=True)
    assert response.status_code == 400 and response.json["reason"] == "sign_up_closed"
    assert user_count(app) == 0
    with app.app_context():
        user = app.lucia.create_user("corp", "alice")  # type: ignore[attr-defined]
    assert sign_in_with(client, oidc, "alice").status_code == 303
    assert signed_in_user(client) == user.user_id


def test_oauth_signed_in_is_sent_with_the_provider_and_profile(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    from flask_lucia import signals

    seen: list[dict[str, Any]] = []

    def record(sender: Flask, **kwargs: Any) -> None:
        seen.append(kwargs)

    with signals.oauth_signed_in.connected_to(record, corp_app):
        sign_in_with(client, oidc, "alice")
        client.post("/auth/sign-out")
        sign_in_with(client, oidc, "alice")
    assert [s["created"] for s in seen] == [True, False]
    assert all(s["provider"] == "corp" and s["profile"]["sub"] == "alice" for s in seen)
    assert seen[1]["user"].user_id == seen[0]["user"].user_id == seen[1]["session"].user_id


def test_a_provider_sign_in_is_fresh(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    sign_in_with(client, oidc)
    with corp_app.app_context():
        session = corp_app.lucia.validate_access_token(  # type: ignore[attr-defined]
            cookie(client, "lucia_access_token")
        )
    assert session.fresh is True


# -- failures: a clear page or JSON AUTH_OAUTH_FAILED, and nobody signed in ---------------


def assert_failed(response: TestResponse, reason: str, status: int = 400) -> None:
    """The JSON failure of a callback, with its reason."""
    assert response.status_code == status, response.text
    assert response.json["error"] == "AUTH_OAUTH_FAILED"
    assert response.json["reason"] == reason
    assert response.json["provider"] == "corp"
    assert response.json["message"]


def assert_nobody_signed_in(app: Flask, client: FlaskClient) -> None:
    assert cookie(client, "lucia_access_token") is None
    assert signed_in_user(client) is None
    with app.app_context():
        storage = app.extensions["lucia"].storage
        with storage.engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(storage.sessions)
            assert conn.execute(count).scalar() == 0


def test_denied_consent_signs_nobody_in(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    callback = ProviderBrowser(oidc).authorize(start(client), "alice", consent=False)
    assert "error=access_denied" in callback
    assert_failed(finish(client, callback, json=True), "access_denied")
    assert_nobody_signed_in(corp_app, client)
    assert user_count(corp_app) == 0


def test_denied_consent_shows_a_clear_page(client: FlaskClient, oidc: OIDCProvider) -> None:
    callback = ProviderBrowser(oidc).authorize(start(client), "alice", consent=False)
    response = finish(client, callback)
    assert response.status_code == 400 and response.mimetype == "text/html"
    page = response.text
    assert "Signing in with Corp did not work" in page
    assert "You did not allow the sign-in at Corp." in page
    assert "access_denied" in page and 'href="/auth/sign-in"' in page
    assert "Nobody was signed in." in page


def test_a_forged_state_signs_nobody_in(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    callback = ProviderBrowser(oidc).authorize(start(client), "alice")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"state": "forged"}
    forged = urlunsplit(parts._replace(query=urlencode(query)))
    assert_failed(finish(client, forged, json=True), "state_mismatch")
    assert_nobody_signed_in(corp_app, client)


def test_a_callback_opened_in_another_browser_signs_nobody_in(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    """Login CSRF: an attacker's finished sign-in sent to a victim's browser."""
    callback = ProviderBrowser(oidc).authorize(start(client), "alice")
    victim = client_of(corp_app)
    assert_failed(finish(victim, callback, json=True), "state_mismatch")
    assert_nobody_signed_in(corp_app, victim)


def test_a_replayed_callback_url_signs_nobody_in(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    callback = ProviderBrowser(oidc).authorize(start(client), "alice")
    assert finish(client, callback).status_code == 303
    client.post("/auth/sign-out")
    assert_failed(finish(client, callback, json=True), "state_mismatch")
    assert_nobody_signed_in(corp_app, client)


def test_a_replayed_code_is_refused_by_the_provider(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    """The state still in the browser's old session cookie, the code spent: the provider
    refuses it (and Authlib never reaches a sign-in)."""
    url = start(client)
    state_cookie = cookie(client, "session")
    assert state_cookie is not None
    callback = ProviderBrowser(oidc).authorize(url, "alice")
    assert finish(client, callback).status_code == 303
    client.post("/auth/sign-out")
    client.set_cookie("session", state_cookie)
    assert_failed(finish(client, callback, json=True), "invalid_grant")
    assert_nobody_signed_in(corp_app, client)


def test_an_expired_code_is_refused_by_the_provider(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp("expiring")})  # codes live 1 s
    client = client_of(app)
    callback = ProviderBrowser(oidc).authorize(start(client), "alice")
    time.sleep(2.5)
    assert_failed(finish(client, callback, json=True), "invalid_grant")
    assert_nobody_signed_in(app, client)


def test_an_id_token_with_a_broken_signature_signs_nobody_in(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp("tampered")})
    client = client_of(app)
    response = sign_in_with(client, oidc, "alice", json=True)
    assert_failed(response, "invalid_id_token")
    assert_nobody_signed_in(app, client)
    assert user_count(app) == 0


def test_an_id_token_for_another_nonce_signs_nobody_in(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider signs an ID token for a nonce the app never sent (a replayed token):
    the person reads plain words, the log says which check failed."""
    caplog.set_level("INFO")
    parts = urlsplit(start(client))
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"nonce": "another-nonce"}
    url = urlunsplit(parts._replace(query=urlencode(query)))
    callback = ProviderBrowser(oidc).authorize(url, "alice")
    response = finish(client, callback, json=True)
    assert_failed(response, "invalid_id_token")
    assert "nonce" not in response.json["message"] and "nonce" in caplog.text
    assert_nobody_signed_in(corp_app, client)


def test_an_unreachable_provider_shows_a_clear_page(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    down = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp(server_metadata_url=down)})
    client = client_of(app)
    response = client.get("/auth/oauth/corp")
    assert response.status_code == 502 and response.mimetype == "text/html"
    assert "Corp could not be reached. Try again." in response.text
    assert_failed(
        client.get("/auth/oauth/corp", headers={"Accept": "application/json"}),
        "provider_unreachable",
        502,
    )
    assert_nobody_signed_in(app, client)


@pytest.mark.parametrize("prefix", ["/failing", "/empty"])
def test_a_broken_discovery_document_shows_a_clear_page(
    make_app: AppFactory, oidc: OIDCProvider, prefix: str
) -> None:
    broken = oidc.corp(server_metadata_url=oidc.metadata_url(prefix))
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": broken})
    client = client_of(app)
    response = client.get("/auth/oauth/corp", headers={"Accept": "application/json"})
    assert_failed(response, "provider_error", 502)
    assert client.get("/auth/oauth/corp").status_code == 502


def test_a_slow_discovery_times_out(make_app: AppFactory, oidc: OIDCProvider) -> None:
    slow = oidc.corp(server_metadata_url=oidc.metadata_url("/slow"))  # answers after 5 s
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": slow}, LUCIA_OAUTH_TIMEOUT=0.5)
    client = client_of(app)
    began = time.monotonic()
    response = client.get("/auth/oauth/corp", headers={"Accept": "application/json"})
    assert time.monotonic() - began < 3
    assert_failed(response, "provider_timeout", 502)
    assert_nobody_signed_in(app, client)


def test_a_slow_token_endpoint_times_out_and_signs_nobody_in(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp("slow")}, LUCIA_OAUTH_TIMEOUT=1)
    client = client_of(app)
    callback = ProviderBrowser(oidc).authorize(start(client), "alice")
    began = time.monotonic()
    response = finish(client, callback, json=True)
    assert time.monotonic() - began < 4
    assert_failed(response, "provider_timeout", 502)
    assert_nobody_signed_in(app, client)
    assert user_count(app) == 0


def test_a_failed_callback_leaves_a_signed_in_user_as_they_were(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    user_id = sign_up(client, "ann@example.com")["user"]["user_id"]
    callback = ProviderBrowser(oidc).authorize(start(client), "alice", consent=False)
    response = finish(client, callback)
    assert response.status_code == 400 and 'href="/auth/oauth"' in response.text
    assert "You are still signed in as before." in response.text
    assert signed_in_user(client) == user_id
    assert keys_of(corp_app, user_id) == ["email:ann@example.com"]


def test_an_unknown_provider_is_not_found(client: FlaskClient) -> None:
    assert client.get("/auth/oauth/nope").status_code == 404
    assert client.get("/auth/oauth/nope/callback?code=x&state=y").status_code == 404


def test_no_provider_routes_without_providers(make_app: AppFactory) -> None:
    client = client_of(make_app())
    assert client.get("/auth/oauth/corp").status_code == 404
    sign_up(client)
    assert client.get("/auth/oauth", headers={"Accept": "application/json"}).status_code == 404


# -- the presets, against the same provider standing in for GitHub and Google -------------


def test_the_github_preset_signs_in_with_githubs_numeric_id_and_verified_email(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    columns = [sa.Column("email", sa.String(120)), sa.Column("name", sa.String(64))]
    app = make_app(Lucia(user_columns=columns), LUCIA_OAUTH_PROVIDERS={"github": oidc.github()})
    client = client_of(app)
    query = parse_qs(urlsplit(start(client, "github")).query)
    assert query["scope"] == ["read:user user:email"] and "nonce" not in query
    assert query["code_challenge_method"] == ["S256"]
    assert sign_in_with(client, oidc, "alice", "github").status_code == 303
    user_id = signed_in_user(client)
    assert keys_of(app, user_id) == ["github:1001"]
    with app.app_context():
        user = app.lucia.get_user(user_id)  # type: ignore[attr-defined]
    assert (user.email, user.name) == ("alice@example.com", "Alice Liddell")


def test_the_github_preset_keeps_no_unverified_email(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    columns = [sa.Column("email", sa.String(120)), sa.Column("name", sa.String(64))]
    app = make_app(Lucia(user_columns=columns), LUCIA_OAUTH_PROVIDERS={"github": oidc.github()})
    client = client_of(app)
    sign_in_with(client, oidc, "bob", "github")
    with app.app_context():
        user = app.lucia.get_user(signed_in_user(client))  # type: ignore[attr-defined]
    assert (user.email, user.name) == (None, "Bob")


def test_the_google_preset_signs_in_with_the_subject(
    make_app: AppFactory, oidc: OIDCProvider
) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"google": oidc.google()})
    client = client_of(app)
    query = parse_qs(urlsplit(start(client, "google")).query)
    assert query["scope"] == ["openid email profile"] and query["nonce"][0]
    assert sign_in_with(client, oidc, "alice", "google").status_code == 303
    assert keys_of(app, signed_in_user(client)) == ["google:alice"]


def test_the_google_preset_discovers_google_by_default(make_app: AppFactory) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"google": {"client_id": "id", "client_secret": "s"}})
    with app.app_context():
        google = app.extensions["lucia_oauth"].settings.providers["google"]
    assert google.server_metadata_url == (
        "https://accounts.google.com/.well-known/openid-configuration"
    )
    assert google.label == "Google"


def test_the_github_preset_points_at_github_by_default(make_app: AppFactory) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"github": {"client_id": "id", "client_secret": "s"}})
    with app.app_context():
        github = app.extensions["lucia_oauth"].settings.providers["github"]
    assert github.authorize_url == "https://github.com/login/oauth/authorize"
    assert github.access_token_url == "https://github.com/login/oauth/access_token"
    assert github.api_base_url == "https://api.github.com/"
    assert github.token_endpoint_auth_method == "client_secret_post"


# -- profile mapping -------------------------------------------------------------------


GITHUB_USER = {"id": 583231, "login": "octocat", "name": "The Octocat", "email": None,
               "avatar_url": "https://avatars.githubusercontent.com/u/583231"}  # fmt: skip


def test_github_profile_takes_the_verified_primary_email() -> None:
    emails = [
        {"email": "old@example.com", "primary": False, "verified": True},
        {"email": "octo@example.com", "primary": True, "verified": True},
    ]
    profile = github_profile(GITHUB_USER, emails)
    assert profile["sub"] == "583231"
    assert (profile["email"], profile["email_verified"]) == ("octo@example.com", True)
    assert (profile["name"], profile["username"]) == ("The Octocat", "octocat")
    assert profile["picture"] == GITHUB_USER["avatar_url"]
    assert profile["raw"] == {"user": GITHUB_USER, "emails": emails}


def test_github_profile_falls_back_to_another_verified_email() -> None:
    emails = [
        {"email": "primary@example.com", "primary": True, "verified": False},
        {"email": "other@example.com", "primary": False, "verified": True},
    ]
    profile = github_profile(GITHUB_USER, emails)
    assert (profile["email"], profile["email_verified"]) == ("other@example.com", True)


def test_github_profile_without_verified_emails_keeps_the_public_one_unverified() -> None:
    user = {**GITHUB_USER, "email": "public@example.com", "name": None}
    profile = github_profile(user, None)  # user:email was not granted
    assert (profile["email"], profile["email_verified"]) == ("public@example.com", False)
    assert profile["name"] == "octocat"  # no display name: the login


def test_google_claims_map_to_a_profile() -> None:
    claims = {"iss": "https://accounts.google.com", "sub": "110169484474386276334",
              "email": "ann@gmail.com", "email_verified": True, "name": "Ann Example",
              "picture": "https://lh3.googleusercontent.com/a/x", "hd": "example.com"}  # fmt: skip
    profile = oidc_profile(claims)
    assert profile["sub"] == "110169484474386276334"
    assert (profile["email"], profile["email_verified"]) == ("ann@gmail.com", True)
    assert (profile["name"], profile["username"]) == ("Ann Example", None)
    assert profile["raw"]["hd"] == "example.com"


@pytest.mark.parametrize(("claim", "verified"), [("true", True), (False, False), (None, False),
                                                 ("false", False), (1, False)])  # fmt: skip
def test_an_oidc_email_counts_as_verified_only_when_the_claim_says_true(
    claim: object, verified: bool
) -> None:
    profile = oidc_profile({"sub": "1", "email": "a@example.com", "email_verified": claim})
    assert profile["email_verified"] is verified


@pytest.mark.parametrize("sub", [None, "", 3.5, True, ["1"]])
def test_a_profile_without_a_usable_subject_is_refused(sub: object) -> None:
    from flask_lucia.oauth.profiles import Failure

    with pytest.raises(Failure, match="invalid_profile"):
        oidc_profile({"sub": sub})


# -- linked providers: the settings page, unlink, never the last way in --------------------


@pytest.fixture
def two_app(make_app: AppFactory, oidc: OIDCProvider) -> Flask:
    """An app with two providers: corp and the GitHub preset."""
    return make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp(), "github": oidc.github()})


def test_the_settings_page_lists_linked_providers_and_offers_the_others(
    two_app: Flask, oidc: OIDCProvider
) -> None:
    client = client_of(two_app)
    sign_up(client, "ann@example.com")
    sign_in_with(client, oidc, "alice", "corp")
    page = client.get("/auth/oauth").text
    assert 'action="/auth/oauth/corp/unlink"' in page and "Unlink Corp" in page
    assert 'action="/auth/oauth/github"' in page and "Link GitHub" in page
    assert "Corp is linked: you can sign in with it." in page  # flashed by the callback
    listed = client.get("/auth/oauth", headers={"Accept": "application/json"}).json
    assert listed == {
        "providers": [
            {"name": "corp", "label": "Corp", "linked": ["alice"]},
            {"name": "github", "label": "GitHub", "linked": []},
        ],
        "keys": 2,
    }


def test_linking_from_the_settings_page_comes_back_to_it(
    two_app: Flask, oidc: OIDCProvider
) -> None:
    client = client_of(two_app)
    user_id = sign_up(client, "ann@example.com")["user"]["user_id"]
    response = sign_in_with(client, oidc, "alice", "github", next="/auth/oauth")
    assert response.status_code == 303 and response.location == "/auth/oauth"
    assert keys_of(two_app, user_id) == ["email:ann@example.com", "github:1001"]


def test_unlink_removes_the_key_and_it_signs_in_no_more(two_app: Flask, oidc: OIDCProvider) -> None:
    client = client_of(two_app)
    user_id = sign_up(client, "ann@example.com")["user"]["user_id"]
    sign_in_with(client, oidc, "alice", "corp")
    response = client.post("/auth/oauth/corp/unlink", data={"identifier": "alice"})
    assert response.status_code == 303 and response.location == "/auth/oauth"
    assert keys_of(two_app, user_id) == ["email:ann@example.com"]
    assert "Unlinked" in client.get("/auth/oauth").text
    client.post("/auth/sign-out")
    sign_in_with(client, oidc, "alice", "corp")
    assert signed_in_user(client) not in (None, user_id)  # a new user now


def test_unlink_over_json_names_the_key(two_app: Flask, oidc: OIDCProvider) -> None:
    client = client_of(two_app)
    sign_up(client, "ann@example.com")
    sign_in_with(client, oidc, "alice", "github")
    response = client.post("/auth/oauth/github/unlink", json={})
    assert response.status_code == 200 and response.json == {"unlinked": "github:1001"}


def test_the_last_way_in_cannot_be_unlinked(two_app: Flask, oidc: OIDCProvider) -> None:
    client = client_of(two_app)
    sign_in_with(client, oidc, "alice", "corp")
    user_id = signed_in_user(client)
    page = client.get("/auth/oauth").text
    assert "It is your only way to sign in, so it cannot be unlinked." in page
    assert "Unlink Corp" not in page
    response = client.post("/auth/oauth/corp/unlink", json={"identifier": "alice"})
    assert response.status_code == 409 and response.json["error"] == "AUTH_LAST_PROVIDER_ID"
    response = client.post("/auth/oauth/corp/unlink", data={"identifier": "alice"})
    assert response.status_code == 303
    assert "last way to sign in" in client.get("/auth/oauth").text
    assert keys_of(two_app, user_id) == ["corp:alice"]


def test_unlinking_a_key_the_user_does_not_have_is_not_found(
    two_app: Flask, oidc: OIDCProvider
) -> None:
    client = client_of(two_app)
    sign_up(client, "ann@example.com")
    sign_in_with(client, oidc, "alice", "corp")
    for body in ({"identifier": "bob"}, {}, {"identifier": ""}, {"identifier": "x" * 999}):
        response = client.post("/auth/oauth/github/unlink", json=body)
        assert response.status_code == 404, body
    assert client.post("/auth/oauth/email/unlink", json={}).status_code == 404


def test_the_settings_page_and_unlink_need_a_session(two_app: Flask) -> None:
    client = client_of(two_app)
    assert client.get("/auth/oauth").status_code == 302
    response = client.post("/auth/oauth/corp/unlink", json={"identifier": "alice"})
    assert response.status_code == 401


def test_a_cross_site_unlink_is_refused(two_app: Flask, oidc: OIDCProvider) -> None:
    client = client_of(two_app)
    user_id = sign_up(client, "ann@example.com")["user"]["user_id"]
    sign_in_with(client, oidc, "alice", "corp")
    response = client.post(
        "/auth/oauth/corp/unlink",
        data={"identifier": "alice"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert keys_of(two_app, user_id) == ["email:ann@example.com", "corp:alice"]


# -- buttons -----------------------------------------------------------------------------


def test_the_sign_in_and_sign_up_pages_show_a_button_per_provider(two_app: Flask) -> None:
    client = client_of(two_app)
    for path in ("/auth/sign-in", "/auth/sign-up"):
        page = client.get(path, query_string={"next": "/private"}).text
        assert 'action="/auth/oauth/corp"' in page and "Continue with Corp" in page, path
        assert 'action="/auth/oauth/github"' in page and "Continue with GitHub" in page, path
        assert page.index("Continue with Corp") < page.index("Continue with GitHub")
        assert '<input type="hidden" name="next" value="/private">' in page


def test_no_buttons_without_providers(make_app: AppFactory) -> None:
    page = client_of(make_app()).get("/auth/sign-in").text
    assert "lucia-oauth" not in page and "Continue with" not in page


def test_a_button_takes_the_pages_next_to_the_provider_and_back(
    corp_app: Flask, client: FlaskClient, oidc: OIDCProvider
) -> None:
    page = client.get("/auth/sign-in?next=/private").text
    assert '<input type="hidden" name="next" value="/private">' in page
    response = sign_in_with(client, oidc, next="/private")
    assert response.location == "/private"


def test_a_provider_can_be_labelled(make_app: AppFactory, oidc: OIDCProvider) -> None:
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp(label="Example Corp SSO")})
    assert "Continue with Example Corp SSO" in client_of(app).get("/auth/sign-in").text


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["client_id", "client_secret"])
def test_a_provider_missing_its_client_id_or_secret_is_refused_naming_it(
    make_app: AppFactory, oidc: OIDCProvider, missing: str
) -> None:
    settings = oidc.corp()
    del settings[missing]
    with pytest.raises(
        ValueError, match=rf"LUCIA_OAUTH_PROVIDERS\['corp'\] is missing its {missing}"
    ):
        make_app(LUCIA_OAUTH_PROVIDERS={"corp": settings})


def test_a_preset_missing_its_secret_is_refused_naming_it(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match=r"\['github'\] is missing its client_secret"):
        make_app(LUCIA_OAUTH_PROVIDERS={"github": {"client_id": "id", "client_secret": ""}})


def test_a_generic_provider_needs_a_server_metadata_url(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match=r"\['corp'\] needs a server_metadata_url"):
        make_app(LUCIA_OAUTH_PROVIDERS={"corp": {"client_id": "id", "client_secret": "s"}})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"client_id": "id", "client_secret": "s", "tenant": "x"}, "unknown key tenant"),
        ({"client_id": "id", "client_secret": "s", "scope": "email"}, "with 'openid'"),
        ({"client_id": "id", "client_secret": "s", "authorize_url": "x"}, "unknown key"),
        ({"client_id": "id", "client_secret": "s", "server_metadata_url": "ftp://x"}, "http"),
        ({"client_id": 5, "client_secret": "s"}, "missing its client_id"),
        (
            {"client_id": "id", "client_secret": "s", "token_endpoint_auth_method": "none"},
            "token_endpoint_auth_method",
        ),
    ],
)
def test_bad_provider_settings_are_refused_naming_the_provider(
    make_app: AppFactory, settings: dict[str, Any], message: str
) -> None:
    settings = {"server_metadata_url": "https://idp.example/.well-known/x", **settings}
    with pytest.raises((ValueError, TypeError), match=message) as raised:
        make_app(LUCIA_OAUTH_PROVIDERS={"corp": settings})
    assert "LUCIA_OAUTH_PROVIDERS['corp']" in str(raised.value)


@pytest.mark.parametrize("name", ["email", "Corp", "a:b", "", "x" * 33])
def test_a_provider_name_that_cannot_key_users_is_refused(
    make_app: AppFactory, oidc: OIDCProvider, name: str
) -> None:
    with pytest.raises(ValueError, match="LUCIA_OAUTH_PROVIDERS"):
        make_app(LUCIA_OAUTH_PROVIDERS={name: oidc.corp()})


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("LUCIA_OAUTH_PROVIDERS", ["corp"], TypeError),
        ("LUCIA_OAUTH_LINK_VERIFIED_EMAIL", "yes", TypeError),
        ("LUCIA_OAUTH_TIMEOUT", "10", TypeError),
        ("LUCIA_OAUTH_TIMEOUT", 0, ValueError),
    ],
)
def test_bad_oauth_keys_are_refused_naming_them(
    make_app: AppFactory, key: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=key):
        make_app(**{key: value})


def test_providers_without_authlib_ask_for_the_oauth_extra(
    make_app: AppFactory, oidc: OIDCProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "authlib.integrations.flask_client", None)
    with pytest.raises(RuntimeError, match=r'pip install "flask-lucia\[oauth\]"'):
        make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})


def test_no_providers_need_no_authlib(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "authlib.integrations.flask_client", None)
    assert "Continue with" not in client_of(make_app()).get("/auth/sign-in").text


def test_providers_need_a_secret_key(make_app: AppFactory, oidc: OIDCProvider) -> None:
    with pytest.raises(RuntimeError, match="secret_key"):
        make_app(SECRET_KEY=None, LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})


def test_the_apps_own_authlib_registry_keeps_its_place(
    oidc: OIDCProvider, make_app: AppFactory
) -> None:
    from authlib.integrations.flask_client import OAuth

    theirs = OAuth()
    app = Flask(__name__)
    theirs.init_app(app)
    app.config.update(TESTING=True, SECRET_KEY="s", LUCIA_DATABASE_URL="sqlite://")
    app.config["LUCIA_OAUTH_PROVIDERS"] = {"corp": oidc.corp()}
    Lucia(app)
    assert app.extensions["authlib.integrations.flask_client"] is theirs
    assert app.extensions["lucia_oauth"].registry is not theirs


def test_two_apps_keep_their_own_providers(make_app: AppFactory, oidc: OIDCProvider) -> None:
    lucia = Lucia()
    one = make_app(lucia, LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})
    two = make_app(lucia, LUCIA_OAUTH_PROVIDERS={"github": oidc.github()})
    assert client_of(one).get("/auth/oauth/github").status_code == 404
    assert client_of(two).get("/auth/oauth/corp").status_code == 404
    assert client_of(two).get("/auth/oauth/github").status_code == 302
    assert not hasattr(lucia, "oauth")


# -- the example app -------------------------------------------------------------------------


def test_the_example_shows_the_buttons_when_providers_are_configured(
    oidc: OIDCProvider, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from .test_example import load_example

    monkeypatch.setenv("FLASK_LUCIA_OAUTH_PROVIDERS", json.dumps({"corp": oidc.corp()}))
    monkeypatch.setenv("FLASK_LUCIA_BASE_URL", "http://localhost")  # the callback registered
    app = load_example(f"sqlite:///{tmp_path / 'example.db'}", monkeypatch)
    app.testing = True
    client = client_of(app)
    page = client.get("/").text
    assert 'action="/auth/oauth/corp"' in page and "Continue with Corp" in page
    assert '<input type="hidden" name="next" value="/dashboard">' in page
    response = sign_in_with(client, oidc, "alice", next="/dashboard")
    assert response.location == "/dashboard"
    dashboard = client.get("/dashboard").text
    assert "Hello, Alice Liddell" in dashboard and 'href="/auth/oauth"' in dashboard


def test_the_example_shows_no_buttons_without_providers(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_example import load_example

    for name in ("GITHUB_CLIENT_ID", "GOOGLE_CLIENT_ID", "FLASK_LUCIA_OAUTH_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)
    app = load_example(f"sqlite:///{tmp_path / 'example.db'}", monkeypatch)
    assert "Continue with" not in client_of(app).get("/").text


# -- once in Chromium ------------------------------------------------------------------------

WHO = "<p id=who>{{ current_user.provider_id if current_user else 'anonymous' }}</p>"


def test_in_chromium_the_button_the_providers_login_page_and_back_signed_in(
    make_app: AppFactory, oidc: OIDCProvider, browser_port: int
) -> None:
    import os
    import threading

    from flask import render_template_string
    from werkzeug.serving import make_server

    sync_api = pytest.importorskip("playwright.sync_api")
    from .test_browser import ARGS, CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    app = make_app(LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()})
    app.add_url_rule("/who", "who", lambda: render_template_string(WHO))
    server = make_server("127.0.0.1", browser_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{browser_port}"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                tab = browser.new_page()
                tab.goto(f"{site}/auth/sign-in?next=/who")
                tab.click("button[data-provider=corp]")
                tab.wait_for_selector("input[name=login]")  # the provider's own login page
                assert tab.url.startswith(oidc.issuer + "/interaction/")
                tab.fill("input[name=login]", "alice")
                tab.fill("input[name=password]", "any password")
                tab.click("button[type=submit]")
                tab.wait_for_selector("input[name=prompt][value=consent]", state="attached")
                tab.click("button[type=submit]")
                tab.wait_for_url(f"{site}/who")
                assert tab.text_content("#who") == "corp:alice"
            finally:
                browser.close()
    finally:
        server.shutdown()


def test_a_user_model_app_gets_a_model_instance_with_email_and_name(
    tmp_path: Any, oidc: OIDCProvider
) -> None:
    from flask import render_template_string
    from flask_sqlalchemy import SQLAlchemy

    from .conftest import TEST_DATABASE_URL, unique_prefix

    prefix = unique_prefix("om_")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'om.db'}",
        LUCIA_TABLE_PREFIX=prefix,
        LUCIA_OAUTH_PROVIDERS={"corp": oidc.corp()},
    )
    db = SQLAlchemy(app)

    class Person(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = f"{prefix}person"
        id = db.Column(db.Integer, primary_key=True)
        email = db.Column(db.String(120), unique=True)
        name = db.Column(db.String(64))

    Lucia(app, db=db, user_model=Person)
    app.add_url_rule(
        "/me", "me", lambda: render_template_string("{{ current_user.id }} {{ current_user.name }}")
    )
    with app.app_context():
        db.create_all()
    try:
        client = client_of(app)
        assert sign_in_with(client, oidc, "alice").status_code == 303
        with app.app_context():
            person = db.session.scalars(sa.select(Person)).one()
            assert (person.email, person.name) == ("alice@example.com", "Alice Liddell")
            assert app.extensions["lucia"].get_user_provider_ids(person.id) == ["corp:alice"]
        assert client.get("/me").text == f"{person.id} Alice Liddell"
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
