"""Screenshots of every built-in page at 360 px and 1280 px wide, for docs/pages.rst,
docs/two-factor.rst and docs/passkeys.rst; the sign-in page in dark mode too.

Run from the repository root (needs Playwright's Python package and Debian's chromium;
no browser is downloaded)::

    python docs/screenshots.py            # writes docs/_static/screenshots/*.png

A throwaway app runs on loopback with a SQLite file in a temporary folder, and the tour of
the page tests (tests/page_tour.py) opens each page the way a person gets there; the user
is signed in from three devices.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the working tree's flask_lucia, installed or not

import flask_lucia.core.clock  # noqa: E402
from tests.page_tour import TOUR_CONFIG, Outbox, add_home, tour, tour_lucia  # noqa: E402

OUT = ROOT / "docs" / "_static" / "screenshots"
CHROMIUM = os.environ.get("LUCIA_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WIDTHS = {"phone": (360, 740), "desktop": (1280, 800)}
#: Pages also shot in dark mode.
DARK = ("sign-in-error", "devices")
DEVICES = [  # (user agent, address, how long ago it signed in)
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "198.51.100.23",
        3 * 86400,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "203.0.113.7",
        2 * 3600,
    ),
]


def make_app(folder: str, outbox: Outbox, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=folder)
    app.config.update(
        SECRET_KEY="screenshots",
        TESTING=True,  # links from the request's host: the loopback server's
        LUCIA_DATABASE_URL=f"sqlite:///{folder}/lucia.sqlite3",
        **{**TOUR_CONFIG, **config},
    )
    lucia = tour_lucia(outbox)
    lucia.init_app(app)
    app.lucia = lucia  # type: ignore[attr-defined]
    add_home(app)
    return app


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


class Past:
    """flask-lucia's clock, ``seconds`` ago: older sessions for the devices page."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def time(self) -> float:
        return time.time() - self.seconds


def other_devices(app: Flask, session: Any) -> None:
    """Two more devices signed in to the user of ``session`` (``GET /auth/session``)."""
    user_id = session["user"]["user_id"]
    with app.app_context():
        auth = app.extensions["lucia"]
        for agent, address, ago in DEVICES:
            flask_lucia.core.clock.time = Past(ago)  # type: ignore[assignment]
            try:
                auth.create_session(user_id, user_agent=agent, ip_address=address)
            finally:
                flask_lucia.core.clock.time = time


#: Events for the activity list: (kind, device, address, amr, how long ago).
EVENTS = [
    ("password_changed", "Safari on iPhone", "198.51.100.23", None, 26 * 3600),
    ("sign_in_failed", "curl", "192.0.2.66", None, 5 * 3600),
    ("second_factor_failed", "Chrome on Linux", "192.0.2.66", None, 4 * 3600),
    ("refresh_reuse", "Firefox on Windows", "203.0.113.7", None, 3 * 3600),
    ("passkey_added", "Firefox on Android", "203.0.113.80", None, 40 * 60),
    ("recovery_codes_new", "Firefox on Android", "203.0.113.80", None, 30 * 60),
    ("sign_in", "Firefox on Android", "203.0.113.80", ("passkey",), 3 * 60),
]


def some_activity(app: Flask, session: Any) -> None:
    """Events of the last day, as the devices page's "Recent activity" shows them."""
    from flask_lucia.activity.store import Event

    user_id, now = session["user"]["user_id"], int(time.time() * 1000)
    with app.app_context():
        app.extensions["lucia_activity"].write_many(
            [
                Event(kind, user_id, now - ago * 1000, device, ip, amr)
                for kind, device, ip, amr, ago in EVENTS
            ]
        )


def code_pages(browser: Any, folder: str) -> None:
    """The two pages of signing in with a code sent by email (on in an app of its own)."""
    app = make_app(folder, Outbox(), LUCIA_EMAIL_CODE_SIGN_IN=True)
    with serving(app) as url:
        page: Any = browser.new_context(color_scheme="light").new_page()
        page.goto(url + "/auth/sign-in")
        page.click("text=Email me a code")
        page.wait_for_selector("input[name=email]")
        shoot(page, "sign-in-code")
        page.fill("input[name=email]", "ann@example.com")
        page.click("button[type=submit]")
        page.wait_for_selector("input[name=code]")
        shoot(page, "sign-in-code-verify")


def shoot(page: Page, name: str) -> None:
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        path = OUT / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        outbox = Outbox()
        app = make_app(folder, outbox)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        with serving(app) as url:
            context = browser.new_context(color_scheme="light", device_scale_factor=1)
            page: Any = context.new_page()
            for name in tour(page, url, app, outbox):
                if name == "devices":
                    session = page.request.get(url + "/auth/session").json()
                    other_devices(app, session)
                    some_activity(app, session)
                    page.reload()
                page.wait_for_load_state("networkidle")
                shoot(page, name)
                if name == "devices":
                    page.goto(url + "/auth/devices#activity")
                    shoot(page, "activity")
                if name in DARK:
                    page.emulate_media(color_scheme="dark")
                    shoot(page, name + "-dark")
                    page.emulate_media(color_scheme="light")
                if name == "sign-in-error":
                    context.clear_cookies()  # the Flask session, and with it the CSRF token
                    page.fill("input[name=password]", "correct horse battery")
                    page.click("button[type=submit]")
                    page.wait_for_selector("text=This form expired")
                    shoot(page, "sign-in-expired")
        with tempfile.TemporaryDirectory() as other:
            code_pages(browser, other)
        browser.close()


if __name__ == "__main__":
    main()
