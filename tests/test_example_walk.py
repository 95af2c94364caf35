"""The example app after the README's first command (``pip install -e .``, no extra): in
Chromium, every page it links to answers without a 5xx, signed out and signed in."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.error import URLError
from urllib.parse import urldefrag, urlsplit

import pytest

from . import test_browser
from .conftest import PASSWORD

chromium = test_browser.chromium
context = test_browser.context

#: Links followed at most (the example has about twenty pages).
MOST = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def bare_example(tmp_path: Any) -> Iterator[str]:
    """The example served by another Python in which no extra's package imports; its URL."""
    port = free_port()
    database = f"sqlite:///{tmp_path / 'example.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.without_extras", str(port), database],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).close()
                break
            except URLError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(server.stderr.read().decode()) from None  # type: ignore[union-attr]
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def walk(tab: Any, url: str, start: str, failures: list[str]) -> list[str]:
    """Open ``start``, then every same-site link of every page reached; the paths seen."""
    seen: list[str] = []
    queue = [url + start]
    while queue and len(seen) < MOST:
        target = queue.pop(0)
        if target in seen:
            continue
        seen.append(target)
        response = tab.goto(target)
        tab.wait_for_load_state("networkidle")
        if response is None or response.status >= 500:
            failures.append(f"{target}: {response and response.status}")
        for href in tab.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            link = urldefrag(href)[0]
            if urlsplit(link).netloc == urlsplit(url).netloc and link not in seen:
                queue.append(link)
    return [urlsplit(s).path for s in seen]


def test_every_page_the_bare_example_links_to_answers_without_a_5xx(
    context: Any, bare_example: str
) -> None:
    failures: list[str] = []
    tab = context.new_page()
    tab.on("response", lambda r: r.status >= 500 and failures.append(f"{r.url}: {r.status}"))
    tab.on("pageerror", lambda e: failures.append(f"script error: {e}"))
    signed_out = walk(tab, bare_example, "/", failures)

    tab.goto(bare_example + "/auth/sign-up?next=/dashboard")
    tab.fill("input[name=username]", "ann")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(bare_example + "/dashboard")
    signed_in = walk(tab, bare_example, "/dashboard", failures)

    assert failures == []
    assert {"/auth/sign-in", "/auth/sign-up", "/auth/reset-password"} <= set(signed_out)
    assert {"/settings", "/auth/devices", "/auth/change-password", "/auth/delete-account"} <= set(
        signed_in
    )
    # Not offered without the mfa extra: the settings page does not link to them.
    assert "/auth/two-factor" not in signed_in and "/auth/passkeys" not in signed_in
    tab.goto(bare_example + "/settings")
    assert tab.locator("text=Not installed").count() == 2


def test_a_json_client_of_a_feature_without_its_extra_gets_json_naming_the_extra(
    bare_example: str,
) -> None:
    request = urllib.request.Request(
        bare_example + "/auth/passkeys/sign-in/options",
        data=b"{}",
        headers={"Content-Type": "application/json", "Origin": bare_example},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 404
    assert refused.value.headers["Content-Type"] == "application/json"
    body = refused.value.read().decode()
    assert "AUTH_INVALID_REQUEST" in body and "flask-lucia[mfa]" in body
