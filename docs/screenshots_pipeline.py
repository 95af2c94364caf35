"""Screenshots of the sign-in pipeline's pages (docs/pipeline.rst) at 360 and 1280 px wide:
the pending step with all three second factors offered, enrolment, and the devices page
with each session's way in.

Run from the repository root (needs the test extra and Debian's chromium; no browser is
downloaded)::

    python docs/screenshots_pipeline.py   # writes docs/_static/screenshots/*.png

A throwaway app on http://localhost (a secure context for WebAuthn) with a SQLite file in a
temporary folder; Chromium's virtual authenticator stands in for a phone.
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyotp
from flask import Flask, render_template_string
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the working tree's flask_lucia, installed or not

from flask_lucia import Lucia  # noqa: E402

OUT = ROOT / "docs" / "_static" / "screenshots"
WIDTHS = {"phone": (360, 740), "desktop": (1280, 800)}
PASSWORD = "correct horse battery"
HOME = '<!doctype html><title>home</title>{{ lucia_script() }}<p id="home">home</p>'
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"


def app() -> Flask:
    """Enrolment is asked of ``new@...`` only, so Ann can be shown without it."""
    flask = Flask(__name__, instance_path=tempfile.mkdtemp())
    flask.config.update(
        SECRET_KEY="screenshots",
        TESTING=True,  # links from the request's host: this app is reached as localhost
        LUCIA_COOKIE_SECURE=False,
        LUCIA_MFA_REQUIRED=lambda user: user.identifier.startswith("new@"),
    )
    Lucia(flask)
    flask.add_url_rule("/", "home", lambda: render_template_string(HOME))
    return flask


def authenticator(tab: Page) -> None:
    cdp = tab.context.new_cdp_session(tab)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True}
    options.update(hasUserVerification=True, isUserVerified=True)
    options.update(automaticPresenceSimulation=True)
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})


def sign_in_form(tab: Page, url: str, email: str) -> None:
    tab.goto(url + "/auth/sign-in")
    tab.fill("input[name=identifier]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")


def shots(tab: Page, name: str) -> None:
    for width, (w, h) in WIDTHS.items():
        tab.set_viewport_size({"width": w, "height": h})
        tab.screenshot(path=str(OUT / f"{name}-{width}.png"), full_page=True)


def main() -> None:
    server = make_server("127.0.0.1", 0, app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://localhost:{server.server_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        laptop = browser.new_context(viewport={"width": 1280, "height": 800})
        tab = laptop.new_page()
        authenticator(tab)
        # Ann: an account with a passkey and TOTP.
        tab.goto(url + "/auth/sign-up")
        tab.fill("input[name=identifier]", "ann@example.com")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.goto(url + "/")
        tab.evaluate("async () => (await import('/auth/lucia.js')).registerPasskey('Laptop')")
        tab.goto(url + "/auth/two-factor")
        secret = tab.text_content("#totp-secret") or ""
        tab.fill("input[name=code]", pyotp.TOTP(secret).now())
        tab.click("button[type=submit]")
        # Her phone signs in with the password and a code.
        phone: Any = browser.new_context(user_agent=PHONE)
        other = phone.new_page()
        sign_in_form(other, url, "ann@example.com")
        other.wait_for_url(re.compile(".*/auth/two-factor/verify.*"))
        other.fill("input[name=code]", pyotp.TOTP(secret).at(int(time.time()) + 30))
        other.click("button[type=submit]")
        # The laptop signs out and in again: the code page offers all three factors.
        tab.goto(url + "/auth/devices")
        laptop.clear_cookies()
        sign_in_form(tab, url, "ann@example.com")
        tab.wait_for_url(re.compile(".*/auth/two-factor/verify.*"))
        tab.wait_for_selector("#lucia-passkey:not([hidden])")
        shots(tab, "pending")
        tab.set_viewport_size({"width": 1280, "height": 800})
        tab.click("button#lucia-passkey")
        tab.wait_for_url(url + "/")
        tab.goto(url + "/auth/devices")
        shots(tab, "devices-ways-in")
        # Someone new, where the app asks everyone new for a second factor.
        fresh = browser.new_context().new_page()
        fresh.goto(url + "/auth/sign-up")
        fresh.fill("input[name=identifier]", "new@example.com")
        fresh.fill("input[name=password]", PASSWORD)
        fresh.click("button[type=submit]")
        fresh.wait_for_url(re.compile(".*/auth/two-factor.*"))
        shots(fresh, "enrolment")
        browser.close()
    server.shutdown()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
