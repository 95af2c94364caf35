"""A command-line client of a flask-lucia app: it signs in with ``"transport": "body"``,
calls the app's API with a bearer token, and refreshes the token pair when the access
token has expired.

    python api_client.py https://app.example.com ann@example.com
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

import requests


class Client:
    """One session's token pair, sent as ``Authorization: Bearer`` with every API call."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.tokens: dict[str, Any] = {}

    def sign_in(self, identifier: str, password: str) -> dict[str, Any]:
        """Sign in; keeps the tokens (expiries in unix ms) and returns the user."""
        credentials = {"identifier": identifier, "password": password}
        self.tokens = self._post("/auth/sign-in", credentials)
        return dict(self.tokens["user"])

    def refresh(self) -> None:
        """Trade the refresh token for a new pair; the old one is spent. A 401 here
        means the session is over (signed out, expired or revoked): sign in again."""
        self.tokens = self._post("/auth/refresh", {"refresh_token": self.tokens["refresh_token"]})

    def get(self, path: str) -> requests.Response:
        """GET an API path; on a 401 (the access token expired) refresh once and retry."""
        response = self._get(path)
        if response.status_code == 401:
            self.refresh()
            response = self._get(path)
        return response

    def _get(self, path: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens['access_token']}"}
        return self.http.get(self.base_url + path, headers=headers, timeout=10)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            self.base_url + path, json={**body, "transport": "body"}, timeout=10
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def main(base_url: str, identifier: str, password: str) -> None:
    """Sign in, call the API, refresh, call it again."""
    client = Client(base_url)
    user = client.sign_in(identifier, password)
    print("signed in as", user["user_id"])
    print(client.get("/api/me").json())
    client.refresh()
    print(client.get("/api/me").json())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], getpass.getpass())
