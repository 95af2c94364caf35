"""Links come from configuration, never from the request (DESIGN §18): a reset asked for
under a foreign ``Host`` (or ``X-Forwarded-Host`` behind ``ProxyFix``) still links to the
app's own ``LUCIA_BASE_URL``, tested through a real HTTP server with a raw ``Host`` header
and a real SMTP server; without a trustworthy base, ``init_app`` refuses to start."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import make_server

from flask_lucia import Lucia

from .conftest import PASSWORD, AppFactory
from .mailserver import MailServer, flows_app, text_of

ANN = "ann@example.com"
BASE = "https://app.example"
_LINK = re.compile(r"https?://[^\s<>\"]+")


def production_app(make_app: AppFactory, smtp: MailServer, **config: Any) -> Flask:
    """An app out of debug and testing (where the request's host is never trusted) that
    mails through ``smtp``; ann has an account."""
    app: Flask = flows_app(make_app, smtp, TESTING=False, LUCIA_EMAIL_VERIFICATION="off", **config)
    with app.app_context():
        app.lucia.create_user("email", ANN, password=PASSWORD)  # type: ignore[attr-defined]
    return app


class Server:
    """The app on a real HTTP server on loopback, for requests with any raw headers."""

    def __init__(self, app: Any) -> None:
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.http.server_port
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def post_json(self, path: str, body: Any, headers: dict[str, str]) -> int:
        """POST ``body`` as JSON with exactly these headers; the status code."""
        data = json.dumps(body).encode()
        lines = [f"POST {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        lines += ["Connection: close", "", ""]
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall("\r\n".join(lines).encode() + data)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        return int(answer.split(b" ", 2)[1])

    def stop(self) -> None:
        self.http.shutdown()
        self.thread.join()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Server] = []

    def start(app: Any) -> Server:
        servers.append(Server(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def links_to(smtp: MailServer, address: str) -> list[str]:
    """Every absolute link in the newest mail to ``address``."""
    found = smtp.to(address)
    assert found, f"no mail to {address}"
    return _LINK.findall(text_of(found[-1]))


def ask_reset(server: Server, host: str, **headers: str) -> int:
    return server.post_json(
        "/auth/reset-password",
        {"email": ANN},
        {"Host": host, "Origin": f"http://{host}", **headers},
    )


# -- a foreign Host ----------------------------------------------------------------------


def test_a_reset_asked_for_under_a_foreign_host_links_to_the_base_url(
    make_app: AppFactory, smtp: MailServer, serve: Any
) -> None:
    server = serve(production_app(make_app, smtp, LUCIA_BASE_URL=BASE))

    assert ask_reset(server, "attacker.example") == 200

    (link,) = links_to(smtp, ANN)
    assert link.startswith(f"{BASE}/auth/reset-password/")
    assert "attacker.example" not in text_of(smtp.to(ANN)[-1])


def test_a_forwarded_host_behind_proxy_fix_does_not_reach_the_link(
    make_app: AppFactory, smtp: MailServer, serve: Any
) -> None:
    app = production_app(make_app, smtp, LUCIA_BASE_URL=BASE)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_host=1)  # type: ignore[method-assign]
    server = serve(app)

    forwarded = {"X-Forwarded-Host": "attacker.example", "Origin": "http://attacker.example"}
    status = ask_reset(server, "app.example", **forwarded)

    assert status == 200
    (link,) = links_to(smtp, ANN)
    assert urlsplit(link).netloc == "app.example"


def test_server_name_builds_the_link_when_no_base_url_is_set(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = production_app(
        make_app, smtp, SERVER_NAME="app.example:8443", PREFERRED_URL_SCHEME="https"
    )
    client = app.test_client()

    answer = client.post(
        "/auth/reset-password",
        json={"email": ANN},
        base_url="http://attacker.example",
        headers={"Origin": "http://attacker.example"},
    )

    assert answer.status_code == 200
    (link,) = links_to(smtp, ANN)
    assert link.startswith("https://app.example:8443/auth/reset-password/")


def test_a_base_url_with_a_path_keeps_it_in_links(make_app: AppFactory, smtp: MailServer) -> None:
    app = production_app(make_app, smtp, LUCIA_BASE_URL="https://example.org/shop/")
    client = app.test_client()

    client.post("/auth/reset-password", json={"email": ANN}, headers={"Origin": "http://localhost"})

    (link,) = links_to(smtp, ANN)
    assert link.startswith("https://example.org/shop/auth/reset-password/")


def test_the_verification_link_comes_from_the_base_url_too(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp, LUCIA_BASE_URL=BASE, LUCIA_EMAIL_VERIFICATION="optional")
    client = app.test_client()

    client.post(
        "/auth/sign-up",
        json={"identifier": "bob@example.com", "password": PASSWORD},
        base_url="http://attacker.example",
        headers={"Origin": "http://attacker.example"},
    )

    (link,) = links_to(smtp, "bob@example.com")
    assert link.startswith(f"{BASE}/auth/verify-email/")


# -- trusted hosts -----------------------------------------------------------------------


def test_with_trusted_hosts_a_foreign_host_is_refused_and_no_mail_goes_out(
    make_app: AppFactory, smtp: MailServer, serve: Any
) -> None:
    server = serve(production_app(make_app, smtp, TRUSTED_HOSTS=["app.example"]))

    assert ask_reset(server, "attacker.example") == 400
    assert smtp.to(ANN) == []


def test_with_trusted_hosts_a_trusted_host_builds_the_link(
    make_app: AppFactory, smtp: MailServer, serve: Any
) -> None:
    server = serve(production_app(make_app, smtp, TRUSTED_HOSTS=["app.example"]))

    assert ask_reset(server, "app.example") == 200

    (link,) = links_to(smtp, ANN)
    assert link.startswith("http://app.example/auth/reset-password/")


# -- start-up ----------------------------------------------------------------------------


def test_init_app_refuses_an_app_with_nothing_to_build_links_from(tmp_path: Any) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["SECRET_KEY"] = "s"

    with pytest.raises(ValueError, match="LUCIA_BASE_URL"):
        Lucia(app)


@pytest.mark.parametrize(
    "config",
    [{"DEBUG": True}, {"TESTING": True}, {"TRUSTED_HOSTS": ["app.example"]}],
    ids=["debug", "testing", "trusted-hosts"],
)
def test_init_app_accepts_the_request_host_where_it_can_be_trusted(
    tmp_path: Any, config: dict[str, Any]
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(config)

    Lucia(app)

    assert app.extensions["lucia"].settings.base_url is None


@pytest.mark.parametrize(
    "value", ["app.example", "ftp://app.example", "https://", "https://app.example/?a=1", 42]
)
def test_a_malformed_base_url_is_refused_at_start_up(tmp_path: Any, value: object) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["LUCIA_BASE_URL"] = value

    with pytest.raises((ValueError, TypeError), match="LUCIA_BASE_URL"):
        Lucia(app)


# -- the other absolute links: OAuth, WebAuthn, TOTP ----------------------------------------


def test_the_oauth_callback_url_comes_from_the_base_url(make_app: AppFactory) -> None:
    app = make_app(
        TESTING=False,
        LUCIA_BASE_URL=BASE,
        LUCIA_OAUTH_PROVIDERS={"github": {"client_id": "id", "client_secret": "secret"}},
    )

    answer = app.test_client().get("/auth/oauth/github", base_url="http://attacker.example")

    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["redirect_uri"] == [f"{BASE}/auth/oauth/github/callback"]


def test_the_passkey_relying_party_and_totp_issuer_come_from_the_base_url(
    make_app: AppFactory,
) -> None:
    from flask_lucia.mfa.views import _issuer
    from flask_lucia.passkeys.views import relying_party

    app = make_app(TESTING=False, LUCIA_BASE_URL="https://app.example:8443")

    with app.test_request_context("/", base_url="http://attacker.example"):
        rp = relying_party()
        issuer = _issuer()

    assert (rp.id, rp.origins) == ("app.example", ("https://app.example:8443",))
    assert issuer == "app.example"
