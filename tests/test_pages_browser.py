"""The built-in pages in real Chromium: sign-out by the form reaches every tab, a phone's
width, an expired form (DESIGN §16)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import render_template_string

from . import test_browser
from .conftest import PASSWORD
from .test_browser import Server, open_tab, sign_up
from .test_example import load_example

# test_browser's fixtures: one Chromium for this module, a profile per test, live apps.
chromium = test_browser.chromium
context = test_browser.context
serve = test_browser.serve

SIGNED_OUT_WITHIN_MS = 1000

# A page of the app without lucia_script(): it imports the module and asks getUser().
BARE = """<!doctype html><title>bare</title>
<script type="module">
  import { getUser } from "{{ url_for('lucia.script') }}";
  window.user = await getUser();
  window.ready = true;
</script>"""


@pytest.fixture
def example(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The example app, live: built-in forms, the built-in sign-out button, and a base
    template that reloads on handleSession()."""
    server = Server(load_example(f"sqlite:///{tmp_path / 'example.db'}", monkeypatch), page=False)
    yield server
    server.stop()


def sign_up_by_form(tab: Any, server: Server, username: str = "ann") -> None:
    tab.goto(server.url + "/auth/sign-up?next=/dashboard")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=identifier]", f"{username}@example.com")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(server.url + "/dashboard")


def test_the_sign_out_button_in_one_tab_signs_out_the_other_within_a_second(
    context: Any,
    example: Server,
) -> None:
    first = context.new_page()
    sign_up_by_form(first, example)
    context.clear_cookies()
    first.goto(example.url + "/auth/sign-in?next=/dashboard")
    first.fill("input[name=identifier]", "ann@example.com")
    first.fill("input[name=password]", PASSWORD)
    first.click("button[type=submit]")
    first.wait_for_url(example.url + "/dashboard")
    first.wait_for_load_state("networkidle")
    second = context.new_page()
    second.goto(example.url + "/dashboard")
    second.wait_for_load_state("networkidle")
    assert "Hello, ann" in first.text_content("h1")

    started = time.monotonic()
    second.click("form.lucia-sign-out button")
    # The first tab reloads (handleSession) and its dashboard sends it to sign in.
    first.wait_for_url(re.compile(r"/auth/sign-in\?"), timeout=SIGNED_OUT_WITHIN_MS + 500)
    elapsed = (time.monotonic() - started) * 1000
    print(f"\nform sign-out shown in the other tab after {elapsed:.0f} ms (POST included)")
    assert elapsed < SIGNED_OUT_WITHIN_MS
    assert first.text_content("h1").strip() == "Sign in"
    assert second.url == example.url + "/"


def test_the_sign_out_button_reaches_a_tab_as_a_store_update(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    sign_up(context, server)
    watching, signing = open_tab(context, server), open_tab(context, server)
    started = signing.evaluate("Date.now()")
    signing.click("form.lucia-sign-out button")
    watching.wait_for_function("window.store === null", timeout=SIGNED_OUT_WITHIN_MS)
    arrived = watching.evaluate("window.seen.at(-1)[0]")
    assert arrived - started < SIGNED_OUT_WITHIN_MS
    assert watching.evaluate("window.updates") == [False]
    assert signing.url == server.url + "/"  # the form's redirect: a page with lucia_script()


def test_signing_this_device_out_on_the_devices_page_reaches_the_other_tabs(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    sign_up(context, server)
    watching = open_tab(context, server)
    devices = context.new_page()
    devices.goto(server.url + "/auth/devices")
    devices.click("li:has(.badge) summary")  # the button asks first
    devices.click("li:has(.badge) button")
    watching.wait_for_function("window.store === null", timeout=SIGNED_OUT_WITHIN_MS)
    assert devices.url.startswith(server.url + "/auth/sign-in")


def test_a_revoked_session_found_by_get_user_reaches_the_other_tabs(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    server.app.add_url_rule("/bare", "bare", lambda: render_template_string(BARE))
    user_id = sign_up(context, server)
    watching = open_tab(context, server)
    with server.app.app_context():
        server.app.lucia.invalidate_all_user_sessions(user_id)
    bare = context.new_page()
    bare.goto(server.url + "/bare")
    bare.wait_for_function("window.ready === true")
    assert bare.evaluate("window.user") is None
    watching.wait_for_function("window.store === null", timeout=SIGNED_OUT_WITHIN_MS)


def test_a_page_without_a_session_tells_no_tab_when_none_was_seen(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    watching = open_tab(context, server)
    requests: list[str] = []
    other = context.new_page()
    other.on("request", lambda r: requests.append(r.url))
    other.goto(server.url + "/auth/sign-in")
    other.wait_for_load_state("networkidle")
    assert not any(url.endswith("/auth/session") for url in requests)
    assert watching.evaluate("window.seen.length") == 1


# -- a phone's width -------------------------------------------------------------------

PHONE = {"width": 360, "height": 740}

# Every element's box inside the viewport, and a label for every field a person fills.
LAYOUT = """() => {
  const width = document.documentElement.clientWidth;
  const outside = [...document.querySelectorAll("body *")]
    .filter((e) => e.getClientRects().length)
    .map((e) => [e.tagName + (e.className ? "." + e.className : ""), e.getBoundingClientRect()])
    .filter(([, r]) => r.left < 0 || r.right > width + 0.5)
    .map(([name, r]) => `${name} ${Math.round(r.left)}..${Math.round(r.right)}`);
  const unlabelled = [...document.querySelectorAll("input, select, textarea")]
    .filter((e) => e.type !== "hidden")
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
    .map((e) => e.name);
  return {
    scroll: document.documentElement.scrollWidth,
    width,
    outside,
    unlabelled,
    fields: document.querySelectorAll("input:not([type=hidden])").length,
  };
}"""


def built_in_pages(context: Any, server: Server) -> Iterator[tuple[str, Any]]:
    """Each built-in page in a 360 x 740 tab: sign-in, sign-up, devices, confirm."""
    tab = context.new_page()
    tab.set_viewport_size(PHONE)
    for path in ("/auth/sign-in", "/auth/sign-up"):
        tab.goto(server.url + path)
        yield path, tab
    sign_up(context, server, "ann-with-a-long-name")
    long_agent = "Mozilla/5.0 (X11; Linux x86_64) " + "SomeVeryLongUnbrokenAgentToken" * 8
    context.request.post(
        server.url + "/auth/sign-in",
        data={"identifier": "ann-with-a-long-name@example.com", "password": PASSWORD},
        headers={"Origin": server.url, "User-Agent": long_agent},
    )
    for path in ("/auth/devices", "/auth/confirm"):
        tab.goto(server.url + path)
        yield path, tab


def test_every_built_in_page_fits_a_360_px_phone_with_a_label_for_every_field(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    seen = []
    for path, tab in built_in_pages(context, server):
        layout = tab.evaluate(LAYOUT)
        assert layout["scroll"] <= layout["width"] == PHONE["width"], (path, layout)
        assert layout["outside"] == [], (path, layout)
        assert layout["unlabelled"] == [], (path, layout)
        seen.append((path, layout["fields"]))
    assert [path for path, _ in seen] == [
        "/auth/sign-in",
        "/auth/sign-up",
        "/auth/devices",
        "/auth/confirm",
    ]
    assert all(fields for path, fields in seen if path != "/auth/devices")


def test_an_error_message_fits_a_phone_too(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    tab = context.new_page()
    tab.set_viewport_size(PHONE)
    tab.goto(server.url + "/auth/sign-in")
    tab.fill("input[name=identifier]", "somebody-with-a-long-address@a-long-domain.example")
    tab.fill("input[name=password]", "not the password")
    tab.click("button[type=submit]")
    tab.wait_for_selector("[role=alert]")
    layout = tab.evaluate(LAYOUT)
    assert layout["scroll"] <= PHONE["width"] and layout["outside"] == [], layout


# -- an expired form ---------------------------------------------------------------------


def test_a_sign_in_form_posted_after_its_token_expired_says_so_and_keeps_the_email(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    sign_up(context, server)
    context.clear_cookies()
    tab = context.new_page()
    tab.goto(server.url + "/auth/sign-in")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", PASSWORD)
    # The Flask session (which holds the token's secret) is gone: as after it expired.
    assert [c["name"] for c in context.cookies()] == ["session"]
    context.clear_cookies()
    tab.click("button[type=submit]")
    tab.wait_for_selector("[role=alert]")
    assert tab.text_content("[role=alert]").strip() == (
        "This form expired before it was sent. Check it and send it again."
    )
    assert tab.input_value("input[name=identifier]") == "ann@example.com"
    assert tab.input_value("input[name=password]") == ""
    # The page carries a fresh token: typing the password again signs in.
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_function("window.ready === true")
    assert tab.text_content("#who") == "ann"


def test_a_cross_site_form_post_shows_a_page_that_says_why(
    context: Any,
    serve: Callable[..., Server],
) -> None:
    server = serve()
    evil = serve()
    evil.app.add_url_rule(
        "/attack",
        "attack",
        lambda: (
            f'<form method="post" action="{server.url}/auth/sign-in">'
            '<input name="identifier" value="mallory@example.com">'
            '<input name="password" value="mallory-password"><button>go</button></form>'
        ),
    )
    # 127.0.0.1 and localhost are different sites: the browser sends Origin: localhost.
    tab = context.new_page()
    tab.goto(evil.url.replace("127.0.0.1", "localhost") + "/attack")
    tab.click("button")
    tab.wait_for_url(re.compile(r"/auth/sign-in$"))
    assert tab.text_content("h1").strip() == "Request refused"
    assert "came from another site" in tab.text_content("[role=alert]")
