"""The browser module and the HTML forms in real Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.serving import make_server

from .conftest import PASSWORD

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("LUCIA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# A page that loads the module with its page data and records what it sees.
PAGE = """<!doctype html><title>page</title>
<p id="who">{{ current_user.username if current_user else "anonymous" }}</p>
{% with redirect="/" %}{% include "lucia/sign_out_form.html" %}{% endwith %}
{{ lucia_script() }}
<script type="module">
  import * as lucia from "{{ url_for('lucia.script') }}";
  window.lucia = lucia;
  window.seen = [];      // every store value with the time it arrived
  window.updates = [];   // onSessionUpdate(hasSession) calls
  window.errors = [];    // onError codes of the silent refresh
  lucia.getSession().subscribe((v) => { window.store = v; window.seen.push([Date.now(), v]); });
  lucia.handleSession((has) => window.updates.push(has));
  lucia.handleSilentRefresh((e) => window.errors.push(e.code));
  window.ready = true;
</script>"""


class Server:
    """A live flask-lucia app on loopback, recording the refreshes it answers."""

    def __init__(self, app: Flask, *, page: bool = True) -> None:
        self.app = app
        self.refreshes: list[tuple[float, int]] = []
        if page:
            app.add_url_rule("/", "page", lambda: render_template_string(PAGE))
        app.after_request(self._record)
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def _record(self, response: Any) -> Any:
        if request.path == "/auth/refresh" and response.status_code == 200:
            self.refreshes.append((time.monotonic(), response.json["expires"]))
        return response

    def stop(self) -> None:
        self.http.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def serve(make_app: Any) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(**config: Any) -> Server:
        server = Server(make_app(**config))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def context(chromium: Any) -> Iterator[Any]:
    """One browser profile: its tabs share cookies, BroadcastChannel and Web Locks."""
    ctx = chromium.new_context()
    yield ctx
    ctx.close()


def open_tab(context: Any, server: Server, path: str = "/") -> Any:
    tab = context.new_page()
    tab.goto(server.url + path)
    tab.wait_for_function("window.ready === true")
    return tab


def sign_up(context: Any, server: Server, username: str = "ann") -> str:
    """Sign this browser profile up through the JSON endpoint; the user id."""
    response = context.request.post(
        server.url + "/auth/sign-up",
        data={"identifier": f"{username}@example.com", "password": PASSWORD, "username": username},
        headers={"Origin": server.url},
    )
    assert response.status == 201, response.text()
    return str(response.json()["user"]["user_id"])


def test_sign_out_in_one_tab_reaches_the_other_in_under_a_second(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    sign_up(context, server)
    first, second = open_tab(context, server), open_tab(context, server)
    assert second.evaluate("window.store.user.username") == "ann"
    started = first.evaluate(
        "async () => { const t = Date.now(); await lucia.signOut(); return t; }"
    )
    second.wait_for_function("window.store === null", timeout=2000)
    arrived = second.evaluate("window.seen.at(-1)[0]")
    elapsed = arrived - started
    print(f"\nsign-out propagation to the second tab: {elapsed} ms (POST included)")
    assert elapsed < 1000
    assert second.evaluate("window.updates") == [False]
    assert first.evaluate("window.updates") == []


def test_sign_in_in_one_tab_updates_an_already_open_tab(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    sign_up(context, server)
    context.clear_cookies()
    waiting = open_tab(context, server)
    assert waiting.evaluate("window.store") is None
    signing = context.new_page()
    signing.goto(server.url + "/auth/sign-in")
    signing.fill("input[name=identifier]", "ann@example.com")
    signing.fill("input[name=password]", PASSWORD)
    signing.click("button[type=submit]")
    signing.wait_for_function("window.ready === true")
    waiting.wait_for_function("window.store && window.store.user.username === 'ann'", timeout=2000)
    assert waiting.evaluate("window.updates") == [True]


def test_three_tabs_refresh_exactly_once_per_expiry_and_stay_signed_in(
    context: Any, serve: Callable[..., Server]
) -> None:
    # Access tokens live 62 s; the module refreshes 60 s before expiry: every ~2 s.
    server = serve(LUCIA_ACCESS_TOKEN_TTL=62)
    sign_up(context, server)
    tabs = [open_tab(context, server) for _ in range(3)]
    deadline = time.monotonic() + 15
    while len(server.refreshes) < 3 and time.monotonic() < deadline:
        tabs[0].wait_for_timeout(200)
    assert len(server.refreshes) >= 3, server.refreshes
    times = [at for at, _ in server.refreshes]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    print(f"\nrefresh POSTs: {len(times)}, gaps between them (s): {gaps}")
    assert all(gap > 1.2 for gap in gaps), f"two tabs refreshed for one expiry: {gaps}"
    latest = server.refreshes[-1][1]
    for tab in tabs:
        tab.wait_for_function(f"window.store && window.store.expires >= {latest}", timeout=2000)
        assert tab.evaluate("window.errors") == []


def test_a_refused_refresh_signs_every_tab_out_and_calls_on_error(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve(LUCIA_ACCESS_TOKEN_TTL=62)
    user_id = sign_up(context, server)
    tabs = [open_tab(context, server) for _ in range(3)]
    with server.app.app_context():
        server.app.lucia.invalidate_all_user_sessions(user_id)
    # A tab may have refreshed on schedule before the sessions were invalidated; none after.
    answered_before = len(server.refreshes)
    for tab in tabs:
        tab.wait_for_function("window.store === null", timeout=8000)
    deadline = time.monotonic() + 3
    while not (errors := [code for tab in tabs for code in tab.evaluate("window.errors")]):
        assert time.monotonic() < deadline, "onError was never called"
        tabs[0].wait_for_timeout(50)
    tabs[0].wait_for_timeout(500)  # and no other tab reports it again
    assert [code for tab in tabs for code in tab.evaluate("window.errors")] == errors
    assert errors == ["AUTH_INVALID_REFRESH_TOKEN"]
    assert server.refreshes[answered_before:] == []


def test_the_forms_work_by_typing_and_clicking_with_csrfprotect_on(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    CSRFProtect(server.app)
    tab = context.new_page()
    tab.goto(server.url + "/auth/sign-up")
    tab.fill("input[name=username]", "ann")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_function("window.ready === true")
    assert tab.text_content("#who") == "ann"
    tab.click("form.lucia-sign-out button")
    tab.wait_for_function("window.ready === true")
    assert tab.text_content("#who") == "anonymous"
    tab.goto(server.url + "/auth/sign-in")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_function("window.ready === true")
    assert tab.text_content("#who") == "ann"
    # The module's own POSTs carry the page's CSRF token.
    tab.evaluate("lucia.signOut()")
    tab.wait_for_function("window.store === null")
    assert context.request.get(server.url + "/auth/session").status == 401


def test_a_wrong_password_in_the_form_shows_an_error(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    sign_up(context, server)
    context.clear_cookies()
    tab = context.new_page()
    tab.goto(server.url + "/auth/sign-in")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", "not the password")
    tab.click("button[type=submit]")
    assert "Wrong email or password." in tab.text_content("[role=alert]")


def test_sign_out_to_another_site_stays_on_this_origin(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    sign_up(context, server)
    tab = open_tab(context, server)
    tab.evaluate("lucia.signOut('https://evil.example/')")
    tab.wait_for_function("window.store === null")
    tab.wait_for_timeout(300)
    assert tab.url.startswith(server.url)


def test_sign_out_to_a_path_goes_there(context: Any, serve: Callable[..., Server]) -> None:
    server = serve()
    server.app.add_url_rule("/bye", "bye", lambda: "bye")
    sign_up(context, server)
    tab = open_tab(context, server)
    with tab.expect_navigation():
        tab.evaluate("lucia.signOut('/bye')")
    assert tab.url == server.url + "/bye"


def test_get_user_needs_no_request_with_page_data(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    sign_up(context, server)
    tab = context.new_page()
    requests: list[str] = []
    tab.on("request", lambda r: requests.append(r.url))
    tab.goto(server.url + "/")
    tab.wait_for_function("window.ready === true")
    assert tab.evaluate("lucia.getUser().then((u) => u.username)") == "ann"
    assert not any(url.endswith("/auth/session") for url in requests)


def test_the_module_is_served_cacheable_and_small(
    context: Any, serve: Callable[..., Server]
) -> None:
    server = serve()
    response = context.request.get(server.url + "/auth/lucia.js")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age=3600" in response.headers["cache-control"]
    assert len(response.body()) < 14 * 1024  # 12 KiB before passkeys (DESIGN §15) joined it


def test_the_example_app_signs_up_out_and_in_in_chromium(
    context: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_example import load_example

    server = Server(load_example(f"sqlite:///{tmp_path / 'example.db'}", monkeypatch), page=False)
    try:
        tab = context.new_page()
        tab.goto(server.url + "/")
        tab.click("text=create an account")
        tab.fill("input[name=username]", "ann")
        tab.fill("input[name=identifier]", "ann@example.com")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(server.url + "/dashboard")
        assert "Hello, ann" in tab.text_content("h1")
        tab.click("form.lucia-sign-out button")
        tab.wait_for_url(server.url + "/")
        tab.click("text=Sign in")
        tab.fill("input[name=identifier]", "ann@example.com")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(server.url + "/dashboard")
        tab.click("text=See the devices")
        assert "This device" in tab.text_content("li:has(.badge)")
    finally:
        server.stop()
