"""Every built-in page in Chromium (tests/page_tour.py walks them all): one <h1>, no
violation under ``Content-Security-Policy: default-src 'self'``, nothing serious or critical
for axe-core in light and dark at 360 and 1280 px; destructive actions ask first, also
without JavaScript; recovery codes can be downloaded; a sign-out elsewhere reaches them."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response

from . import test_browser
from .conftest import AppFactory
from .page_tour import PAGES, TOUR_CONFIG, Outbox, add_home, tour, tour_lucia
from .test_browser import Server

chromium = test_browser.chromium
context = test_browser.context

AXE = pathlib.Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
STRICT = "default-src 'self'"
WIDTHS = (360, 1280)
# Collects what the page's Content-Security-Policy refused, from the first byte on.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI || "inline"}`));
"""
SERIOUS = """() => axe.run(document, {resultTypes: ["violations"]}).then((r) => r.violations
  .filter((v) => v.impact === "serious" || v.impact === "critical")
  .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`))"""


class Tour:
    def __init__(self, server: Server, outbox: Outbox) -> None:
        self.server, self.outbox = server, outbox

    def pages(self, tab: Any) -> Iterator[str]:
        return tour(tab, self.server.url, self.server.app, self.outbox)


def strict_csp(response: Response) -> Response:
    response.headers.add("Content-Security-Policy", STRICT)
    return response


@pytest.fixture
def pages(make_app: AppFactory) -> Iterator[Tour]:
    """A live app with every feature on, mails kept, under ``default-src 'self'``."""
    outbox = Outbox()
    app: Flask = make_app(tour_lucia(outbox), **TOUR_CONFIG)
    add_home(app)
    app.after_request(strict_csp)
    server = Server(app, page=False)
    yield Tour(server, outbox)
    server.stop()


def test_every_built_in_page_has_exactly_one_h1(context: Any, pages: Tour) -> None:
    tab = context.new_page()
    headings = {name: tab.locator("h1").all_text_contents() for name in pages.pages(tab)}
    assert list(headings) == list(PAGES)
    assert {name: h for name, h in headings.items() if len(h) != 1} == {}
    assert headings["oauth-error"] == ["Signing in with GitHub did not work"]


def test_every_built_in_page_runs_under_default_src_self_with_no_violation(
    context: Any, pages: Tour
) -> None:
    context.add_init_script(RECORD_VIOLATIONS)
    tab = context.new_page()
    violations, passkey_button = {}, None
    for name in pages.pages(tab):
        tab.wait_for_load_state("networkidle")
        found = tab.evaluate("window.violations")
        if found:
            violations[name] = found
        if name == "sign-in":  # shown by lucia-pages.js: the page's script ran
            passkey_button = tab.locator("#lucia-passkey").is_visible()
    assert violations == {}
    assert passkey_button is True


def test_axe_finds_nothing_serious_on_any_page_light_and_dark_at_360_and_1280(
    context: Any, pages: Tour
) -> None:
    axe = AXE.read_text()
    tab = context.new_page()
    found = {}
    for name in pages.pages(tab):
        tab.evaluate(axe)  # evaluated by DevTools: the page's CSP does not apply
        for scheme in ("light", "dark"):
            tab.emulate_media(color_scheme=scheme)
            for width in WIDTHS:
                tab.set_viewport_size({"width": width, "height": 800})
                serious = tab.evaluate(SERIOUS)
                if serious:
                    found[f"{name} {scheme} {width}"] = serious
    assert found == {}


def sign_in(tab: Any, pages: Tour) -> None:
    with pages.server.app.app_context():
        pages.server.app.lucia.create_user(  # type: ignore[attr-defined]
            "email", "ann@example.com", password="correct horse battery"
        )
    tab.goto(pages.server.url + "/auth/sign-in")
    tab.fill("input[name=identifier]", "ann@example.com")
    tab.fill("input[name=password]", "correct horse battery")
    with tab.expect_navigation():
        tab.click("button[type=submit]")


@pytest.mark.parametrize("javascript", [True, False])
def test_signing_a_device_out_asks_first_with_or_without_javascript(
    chromium: Any, pages: Tour, javascript: bool
) -> None:
    profile = chromium.new_context(java_script_enabled=javascript)
    tab = profile.new_page()
    sign_in(tab, pages)
    tab.goto(pages.server.url + "/auth/devices")
    tab.click("summary:has-text('Sign out this device')")
    assert tab.locator(".confirm-box").is_visible()
    assert tab.url.endswith("/auth/devices")  # asked, nothing done yet
    with tab.expect_navigation():
        tab.click("button:has-text('Yes, sign it out')")
    assert "/auth/sign-in" in tab.url
    profile.close()


def test_the_recovery_codes_download_as_a_text_file(context: Any, pages: Tour) -> None:
    tab = context.new_page()
    steps = pages.pages(tab)
    for name in steps:
        if name == "two-factor-codes":
            break
    shown = tab.locator("[data-lucia-codes] li").all_text_contents()
    assert tab.locator("[data-lucia-copy]").is_visible()
    assert tab.locator("[data-lucia-print]").is_visible()
    with tab.expect_download() as download:
        tab.click("[data-lucia-download]")
    path = download.value.path()
    assert download.value.suggested_filename == "recovery-codes.txt"
    assert pathlib.Path(path).read_text().split() == [code.strip() for code in shown]
    assert len(shown) == 10


def test_a_built_in_page_follows_a_sign_out_in_another_tab(context: Any, pages: Tour) -> None:
    devices = context.new_page()
    sign_in(devices, pages)
    devices.goto(pages.server.url + "/auth/devices")
    devices.wait_for_load_state("networkidle")
    other = context.new_page()
    other.goto(pages.server.url + "/auth/confirm")
    other.wait_for_load_state("networkidle")
    other.evaluate("import('/auth/lucia.js').then((lucia) => lucia.signOut())")
    devices.wait_for_url("**/auth/sign-in**", timeout=2000)
    assert devices.locator("text=Sign out this device").count() == 0
