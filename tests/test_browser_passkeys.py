"""Passkeys in real Chromium (Debian's, driven by Playwright) with its virtual authenticator
(the DevTools WebAuthn domain): register, sign out, sign in with no username; refusals.

WebAuthn needs a secure context: http://localhost is one, so the server is reached as
localhost (the RP id), never 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from flask import Flask, render_template_string

from flask_lucia import current_session, current_user

from .conftest import PASSWORD, AppFactory
from .test_browser import Server, chromium  # noqa: F401 - the shared Chromium fixture

playwright = pytest.importorskip("playwright.sync_api")

PAGE = """<!doctype html><title>passkeys</title>
{{ lucia_script() }}
<script type="module">
  import * as lucia from "{{ url_for('lucia.script') }}";
  window.lucia = lucia;
  window.ready = true;
</script>"""

# A ceremony by hand: options from the server, the browser's answer, posted by the test.
CEREMONY = """async (path) => {
  const b = (s) => Uint8Array.from(
    atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const u = (x) => btoa(String.fromCharCode(...new Uint8Array(x)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const o = await (await fetch(`/auth/passkeys/${path}/options`, {method: "POST",
    headers: {"Content-Type": "application/json"}, body: "{}"})).json();
  const c = path === "register"
    ? await navigator.credentials.create({publicKey: {...o, challenge: b(o.challenge),
        user: {...o.user, id: b(o.user.id)}, excludeCredentials: []}})
    : await navigator.credentials.get({publicKey: {...o, challenge: b(o.challenge)}});
  const r = c.response, response = {clientDataJSON: u(r.clientDataJSON)};
  if (r.attestationObject) {
    response.attestationObject = u(r.attestationObject);
    response.transports = r.getTransports();
  } else {
    response.authenticatorData = u(r.authenticatorData);
    response.signature = u(r.signature);
    response.userHandle = u(r.userHandle);
  }
  return {id: c.id, rawId: u(c.rawId), type: c.type, response};
}"""

# A discoverable credential for localhost that the server never saw (made without it).
STRANGER = """async () => {
  const random = (n) => crypto.getRandomValues(new Uint8Array(n));
  await navigator.credentials.create({publicKey: {
    rp: {id: "localhost", name: "elsewhere"}, challenge: random(32),
    user: {id: random(32), name: "mallory", displayName: "mallory"},
    pubKeyCredParams: [{type: "public-key", alg: -7}],
    authenticatorSelection: {residentKey: "required", userVerification: "required"}}});
  return true;
}"""


@pytest.fixture
def serve(make_app: AppFactory) -> Iterator[Any]:
    servers: list[Server] = []

    def start(**config: Any) -> Server:
        app = make_app(**config)
        add_views(app)
        server = Server(app, page=False)
        server.url = server.url.replace("127.0.0.1", "localhost")  # a secure context
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def add_views(app: Flask) -> None:
    app.add_url_rule("/", "page", lambda: render_template_string(PAGE))

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return {"mfa": current_session.mfa if current_user else None}


class Profile:
    """A browser profile with one tab on the site and a virtual platform authenticator."""

    def __init__(self, chromium: Any, server: Server) -> None:  # noqa: F811
        self.server = server
        self.context = chromium.new_context()
        self.tab = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.tab)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.authenticator = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )["authenticatorId"]
        self.open()

    def open(self, path: str = "/") -> None:
        self.tab.goto(self.server.url + path)
        if path == "/":
            self.tab.wait_for_function("window.ready === true")

    def sign_up(self, name: str = "ann") -> str:
        response = self.context.request.post(
            self.server.url + "/auth/sign-up",
            data={"identifier": f"{name}@example.com", "password": PASSWORD, "username": name},
            headers={"Origin": self.server.url},
        )
        assert response.status == 201, response.text()
        self.open()
        return str(response.json()["user"]["user_id"])

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator})
        return list(found["credentials"])

    def get(self, path: str) -> Any:
        return self.context.request.get(
            self.server.url + path, headers={"Accept": "application/json"}
        )

    def post(self, path: str, body: Any) -> Any:
        return self.context.request.post(
            self.server.url + path, data=body, headers={"Origin": self.server.url}
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def profiles(chromium: Any) -> Iterator[Any]:  # noqa: F811
    made: list[Profile] = []

    def make(server: Server) -> Profile:
        profile = Profile(chromium, server)
        made.append(profile)
        return profile

    yield make
    for profile in made:
        profile.close()


def test_register_sign_out_and_sign_in_with_a_passkey_and_no_username(
    serve: Any, profiles: Any
) -> None:
    server = serve()
    ann = profiles(server)
    user_id = ann.sign_up()

    passkey = ann.tab.evaluate("lucia.registerPasskey('Chromium')")
    ann.tab.evaluate("lucia.signOut()")
    ann.tab.wait_for_timeout(100)
    signed_out = ann.get("/auth/session").status
    ann.open("/auth/sign-in")
    ann.tab.click("text=Sign in with a passkey")
    ann.tab.wait_for_url(server.url + "/")

    listed = ann.get("/auth/passkeys").json()["passkeys"]
    assert passkey["name"] == "Chromium" and [p["id"] for p in listed] == [passkey["id"]]
    assert listed[0]["transports"] == ["internal"] and listed[0]["last_used_at"] is not None
    assert signed_out == 401
    assert ann.get("/auth/session").json()["user"]["user_id"] == user_id
    assert ann.get("/whoami").json() == {"mfa": True}
    credential = ann.credentials()[0]
    assert credential["isResidentCredential"] is True and credential["signCount"] >= 1


def test_the_module_signs_in_with_a_passkey_and_the_user_handle_is_not_the_email(
    serve: Any, profiles: Any
) -> None:
    server = serve()
    ann = profiles(server)
    user_id = ann.sign_up()
    ann.tab.evaluate("lucia.registerPasskey()")
    ann.context.clear_cookies()
    ann.open()

    user = ann.tab.evaluate("lucia.signInWithPasskey()")

    assert user["user_id"] == user_id and ann.get("/whoami").json() == {"mfa": True}
    handle = ann.credentials()[0]["userHandle"]
    assert "ann" not in handle and user_id not in handle


def test_a_second_authenticator_that_is_not_registered_is_refused(
    serve: Any, profiles: Any
) -> None:
    server = serve()
    ann = profiles(server)
    ann.sign_up()
    ann.tab.evaluate("lucia.registerPasskey()")
    mallory = profiles(server)
    assert mallory.tab.evaluate(STRANGER) is True

    refused = mallory.tab.evaluate(
        "lucia.signInWithPasskey().then(() => null, (e) => [e.status, e.message])"
    )

    assert refused == [400, "This passkey is not registered here."]
    assert mallory.get("/auth/session").status == 401


def test_a_deleted_passkey_no_longer_signs_in(serve: Any, profiles: Any) -> None:
    server = serve()
    ann = profiles(server)
    ann.sign_up()
    passkey = ann.tab.evaluate("lucia.registerPasskey()")
    deleted = ann.context.request.delete(
        f"{server.url}/auth/passkeys/{passkey['id']}",
        headers={"Origin": server.url, "Accept": "application/json"},
    )
    ann.tab.evaluate("lucia.signOut()")

    refused = ann.tab.evaluate("lucia.signInWithPasskey().then(() => null, (e) => e.status)")

    assert deleted.status == 200 and refused == 400
    assert ann.get("/auth/session").status == 401


def test_a_replayed_response_and_one_posted_by_another_browser_are_refused(
    serve: Any, profiles: Any
) -> None:
    server = serve()
    ann = profiles(server)
    ann.sign_up()
    ann.tab.evaluate("lucia.registerPasskey()")
    ann.tab.evaluate("lucia.signOut()")
    response = ann.tab.evaluate(CEREMONY, "sign-in")
    other = profiles(server)
    other.post("/auth/passkeys/sign-in/options", {})  # a challenge of its own

    elsewhere = other.post("/auth/passkeys/sign-in/verify", {"credential": response})
    first = ann.post("/auth/passkeys/sign-in/verify", {"credential": response})
    ann.tab.evaluate("lucia.signOut()")
    replayed = ann.post("/auth/passkeys/sign-in/verify", {"credential": response})

    assert elsewhere.status == 400 and other.get("/auth/session").status == 401
    assert first.status == 200
    assert replayed.status == 400 and ann.get("/auth/session").status == 401


def test_a_registration_on_an_origin_the_server_does_not_expect_stores_nothing(
    serve: Any, profiles: Any
) -> None:
    server = serve(LUCIA_WEBAUTHN_ORIGIN="https://app.example")
    ann = profiles(server)
    ann.sign_up()

    response = ann.tab.evaluate(CEREMONY, "register")
    answer = ann.post("/auth/passkeys/register/verify", {"credential": response})

    assert answer.status == 400  # in the user's words; the library's reason goes to the log
    assert answer.json()["message"] == (
        "This passkey could not be checked. Try again, or use another sign-in method."
    )
    assert ann.get("/auth/passkeys").json() == {"passkeys": []}


def test_a_password_sign_in_is_completed_by_a_passkey_on_the_code_page(
    serve: Any, profiles: Any
) -> None:
    server = serve()
    ann = profiles(server)
    ann.sign_up()
    ann.tab.evaluate("lucia.registerPasskey('Chromium')")
    secret = ann.post("/auth/two-factor", {}).json()["secret"]
    on = ann.post("/auth/two-factor", {"secret": secret, "code": pyotp.TOTP(secret).now()})
    assert on.status == 200, on.text()
    ann.tab.evaluate("lucia.signOut()")
    ann.open("/auth/sign-in")
    ann.tab.fill("input[name=identifier]", "ann@example.com")
    ann.tab.fill("input[name=password]", PASSWORD)
    ann.tab.click("button[type=submit]")
    ann.tab.wait_for_url("**/auth/two-factor/verify**")
    pending = ann.get("/auth/session").status
    label = ann.tab.text_content("button#lucia-passkey")

    ann.tab.click("button#lucia-passkey")
    ann.tab.wait_for_url(server.url + "/")

    session = ann.get("/auth/session").json()["session"]
    assert label == "Use your passkey"
    assert pending == 401 and session["amr"] == ["pwd", "passkey"] and session["aal"] == 2
    assert "lucia_two_factor" not in {c["name"] for c in ann.context.cookies()}


def test_a_passkey_ceremony_by_the_signed_in_user_makes_the_same_session_fresh(
    serve: Any, profiles: Any
) -> None:
    server = serve(LUCIA_FRESH_FOR=4)
    ann = profiles(server)
    ann.sign_up()
    ann.tab.evaluate("lucia.registerPasskey('Chromium')")
    before = ann.get("/auth/session").json()["session"]["checksum"]
    ann.tab.wait_for_timeout(4200)
    stale = ann.post("/auth/passkeys/register/options", {}).status

    ann.tab.evaluate("lucia.signInWithPasskey()")

    after = ann.get("/auth/session").json()["session"]
    assert stale == 401 and after["checksum"] == before and after["aal"] == 2
    assert ann.post("/auth/passkeys/register/options", {}).status == 200
