"""Throwaway: proves Playwright for Python drives Debian's Chromium here."""

from playwright.sync_api import sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    page = browser.new_page()
    page.set_content("<p id=x>hi</p>")
    print(
        browser.version,
        page.evaluate("document.getElementById('x').textContent"),
        page.evaluate("typeof BroadcastChannel"),
        page.evaluate("typeof navigator.locks"),
    )
    browser.close()
