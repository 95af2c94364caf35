"""Screenshots of pages in German (Flask-Babel), for docs/translations.rst: German words
are long, so these show whether anything overflows on a 360 px phone.

Run from the repository root (needs the test extra and Debian's chromium)::

    python docs/screenshots_i18n.py   # writes docs/_static/screenshots/*-de-*.png

A throwaway app whose Babel selector answers "de", with a SQLite file in a temporary folder.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import pyotp
from flask import Flask
from flask_babel import Babel
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the working tree's flask_lucia, installed or not

from flask_lucia import Lucia  # noqa: E402

OUT = ROOT / "docs" / "_static" / "screenshots"
CHROMIUM = os.environ.get("LUCIA_CHROMIUM", "/usr/bin/chromium")
WIDTHS = {"phone": (360, 740), "desktop": (1280, 800)}
PASSWORD = "correct horse battery"


def main() -> None:
    folder = tempfile.mkdtemp()
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)  # only for its port
    port = server.server_port
    server.server_close()
    url = f"http://localhost:{port}"
    app = Flask(__name__, instance_path=folder)
    app.config.update(SECRET_KEY="screenshots", LUCIA_COOKIE_SECURE=False, LUCIA_BASE_URL=url)
    Babel(app, locale_selector=lambda: "de")
    Lucia(app)
    app.add_url_rule("/", "home", lambda: "home")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for size, (width, height) in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            tab = context.new_page()

            def shot(page: Page, name: str, size: str = size) -> None:
                page.screenshot(path=str(OUT / f"{name}-de-{size}.png"), full_page=True)

            email = f"anna.{size}@example.com"
            tab.goto(url + "/auth/sign-up")
            tab.fill("input[name=identifier]", email)
            tab.fill("input[name=password]", PASSWORD)
            tab.click("button[type=submit]")
            tab.goto(url + "/auth/two-factor")
            shot(tab, "two-factor")
            secret = tab.text_content("#totp-secret") or ""
            tab.fill("input[name=code]", pyotp.TOTP(secret).now())
            tab.click("button[type=submit]")
            context.clear_cookies()  # signed out
            tab.goto(url + "/auth/sign-in")
            tab.fill("input[name=identifier]", email)
            tab.fill("input[name=password]", "falsches Passwort")
            tab.click("button[type=submit]")
            tab.wait_for_selector(".flash.error")
            shot(tab, "sign-in")
            tab.fill("input[name=password]", PASSWORD)
            tab.click("button[type=submit]")
            tab.wait_for_url(re.compile(".*/auth/two-factor/verify.*"))
            shot(tab, "two-factor-verify")
            context.close()
        browser.close()
    server.shutdown()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
