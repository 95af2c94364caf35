"""A real OpenID Connect provider for the OAuth tests, and a person's browser at it.

``OIDCProvider`` runs tests/oidc/provider.mjs (the npm package ``oidc-provider``, installed
by ``npm ci --prefix tests``) on a free loopback port. ``ProviderBrowser`` is a user at that
provider: it follows the authorization URL the app sends it to, answers the login and
consent pages like a person would, and hands back the URL the provider redirects to.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

HERE = pathlib.Path(__file__).parent
SCRIPT = HERE / "provider.mjs"
PACKAGE = HERE.parent / "node_modules" / "oidc-provider"

#: Who can sign in at the provider (the login is the subject, ``sub``).
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "github_id": 1001,
    },
    "bob": {"email": "bob@example.com", "email_verified": False, "name": "Bob", "github_id": 1002},
    # The address of the suite's usual password account (tests.conftest.sign_up).
    "ann": {"email": "ann@example.com", "email_verified": True, "name": "Ann", "github_id": 1003},
    "carol": {"email": "Carol@Example.COM", "email_verified": True, "github_id": 1004},
}

#: The provider names the test apps use; each has its callback URL registered there.
APP_PROVIDERS = ("corp", "github", "google")


def free_port() -> int:
    """A loopback port nobody listens on (for a server started later, or a refused call)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class OIDCProvider:
    """oidc-provider on Node, on a free loopback port, until ``stop()``."""

    def __init__(self, browser_port: int) -> None:
        node = shutil.which("node")
        if node is None or not PACKAGE.is_dir():
            pytest.skip("the test OpenID provider needs Node and `npm ci --prefix tests`")
        callbacks = [f"http://localhost/auth/oauth/{name}/callback" for name in APP_PROVIDERS]
        callbacks.append(f"http://127.0.0.1:{browser_port}/auth/oauth/corp/callback")
        env = {
            **os.environ,
            "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
            "OIDC_REDIRECT_URIS": json.dumps(callbacks),
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the provider runs
        self.process = subprocess.Popen(
            [node, str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        self.issuer = self._read_issuer()

    def _read_issuer(self) -> str:
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            line = b""
        if not line:
            self.stop()
            self.log.seek(0)
            raise RuntimeError(f"the OpenID provider did not start: {self.log.read().decode()}")
        issuer: str = json.loads(line)["issuer"]
        return issuer

    def stop(self) -> None:
        """End the provider: stdin closes, and it exits (killed if it lingers)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()

    def metadata_url(self, prefix: str = "") -> str:
        """The discovery document's URL (``prefix`` "/slow": one that never answers)."""
        return f"{self.issuer}{prefix}/.well-known/openid-configuration"

    def corp(self, client: str = "corp", **extra: Any) -> dict[str, Any]:
        """``LUCIA_OAUTH_PROVIDERS`` settings of a generic OpenID Connect provider; the
        ``client`` "expiring", "slow" or "tampered" misbehaves as provider.mjs says."""
        return {
            "server_metadata_url": self.metadata_url(),
            "client_id": client,
            "client_secret": f"{client}-secret",
            **extra,
        }

    def github(self) -> dict[str, Any]:
        """The GitHub preset, its URLs pointed here (the API through provider.mjs)."""
        return {
            "client_id": "github",
            "client_secret": "github-secret",
            "authorize_url": f"{self.issuer}/auth",
            "access_token_url": f"{self.issuer}/token",
            "api_base_url": f"{self.issuer}/github-api/",
        }

    def google(self) -> dict[str, Any]:
        """The Google preset, discovering this provider instead of Google."""
        return {
            "client_id": "google",
            "client_secret": "google-secret",
            "server_metadata_url": self.metadata_url(),
        }


class ProviderBrowser:
    """A person's browser at the provider: its own cookies there, login and consent."""

    def __init__(self, provider: OIDCProvider) -> None:
        self.issuer = provider.issuer
        self.http = requests.Session()
        self.pages: list[str] = []  # the provider pages seen, in order

    def authorize(self, url: str, login: str = "alice", *, consent: bool = True) -> str:
        """Open the app's authorization URL, sign in as ``login``, allow (or refuse) the
        app; the URL the provider sends the browser back to."""
        response = self.http.get(url, allow_redirects=False, timeout=10)
        for _ in range(16):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if not location.startswith(self.issuer + "/"):
                    return location  # back to the app
                response = self.http.get(location, allow_redirects=False, timeout=10)
                continue
            assert response.status_code == 200, response.text
            page = response.text
            if 'name="prompt" value="login"' in page:
                self.pages.append("login")
                form = {"prompt": "login", "login": login, "password": "any password"}
            elif 'name="prompt" value="consent"' in page:
                self.pages.append("consent")
                if not consent:
                    abort = response.url.rstrip("/") + "/abort"
                    response = self.http.get(abort, allow_redirects=False, timeout=10)
                    continue
                form = {"prompt": "consent"}
            else:
                raise AssertionError(f"unexpected provider page: {page[:500]}")
            response = self.http.post(response.url, data=form, allow_redirects=False, timeout=10)
        raise AssertionError("the provider never sent the browser back")
