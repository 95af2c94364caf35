"""Take the screenshots of the two-factor and passkey pages in docs/images/.

Run from the repository root (needs the test extra and Debian's chromium):

    python docs/screenshots_mfa.py

A throwaway app on http://localhost (a secure context for WebAuthn) with a SQLite file in a
temporary folder; Chromium's virtual authenticator stands in for a phone.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading

import pyotp
from flask import Flask
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
from flask_lucia import Lucia

IMAGES = os.path.join(os.path.dirname(__file__), "images")
PASSWORD = "correct horse battery"


def main() -> None:
    os.makedirs(IMAGES, exist_ok=True)
    folder = tempfile.mkdtemp()
    app = Flask(__name__, instance_path=folder)
    app.config.update(SECRET_KEY="screenshots", LUCIA_COOKIE_SECURE=False)
    Lucia(app)
    app.add_url_rule("/", "home", lambda: "home")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://localhost:{server.server_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 480, "height": 700})
        tab = context.new_page()
        cdp = context.new_cdp_session(tab)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True}
        options.update(hasUserVerification=True, isUserVerified=True)
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})

        def shot(name: str) -> None:
            tab.screenshot(path=os.path.join(IMAGES, name), full_page=True)

        tab.goto(url + "/auth/sign-up")
        tab.fill("input[name=identifier]", "ann@example.com")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.goto(url + "/auth/two-factor")
        shot("two-factor-setup.png")
        secret = tab.text_content("#totp-secret") or ""
        tab.fill("input[name=code]", pyotp.TOTP(secret).now())
        tab.click("button[type=submit]")
        shot("two-factor-codes.png")
        tab.goto(url + "/auth/passkeys")
        tab.fill("#lucia-passkey-name", "Laptop")
        tab.click("#lucia-add-passkey-button")
        tab.wait_for_selector("text=Laptop")
        shot("passkeys.png")
        context.clear_cookies()  # signed out
        tab.goto(url + "/auth/sign-in")
        tab.wait_for_selector("text=Sign in with a passkey")
        shot("sign-in-passkey.png")
        tab.fill("input[name=identifier]", "ann@example.com")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(re.compile(".*/auth/two-factor/verify.*"))
        tab.wait_for_selector("text=Sign in with a passkey")
        shot("two-factor-verify.png")
        browser.close()
    server.shutdown()
    print(f"screenshots in {IMAGES}")


if __name__ == "__main__":
    main()
