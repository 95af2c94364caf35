"""Names for signed-in devices from their User-Agent ("Chrome on Linux", "Safari on iPhone")."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import ua_parser

from flask_lucia.i18n import gettext

#: ua-parser's family names as people say them.
_BROWSERS: Final = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "HeadlessChrome": "Headless Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Samsung Internet": "Samsung Internet",
}
_SYSTEMS: Final = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
_APPLE_DEVICES: Final = frozenset({"iPhone", "iPad", "iPod"})
_UNKNOWN: Final = "Other"
_LONGEST: Final = 60  # characters of a raw User-Agent shown when nothing is recognised


def device_name(user_agent: str | None) -> str:
    """A short name for the browser and system of ``user_agent``; "Unknown device" if empty,
    in the request's language.

    An agent ua-parser does not know is shown as it is, cut to 60 characters.
    """
    agent = (user_agent or "").strip()
    if not agent:
        return gettext("Unknown device")
    browser, where = _recognise(agent)
    if browser is None or where is None:
        return browser or where or agent
    return gettext("%(browser)s on %(system)s", browser=browser, system=where)


@lru_cache(maxsize=256)
def _recognise(agent: str) -> tuple[str | None, str | None]:
    """The browser and the system (or Apple device) ua-parser names; None where it knows
    nothing; when it knows neither, the raw agent cut to 60 characters stands as the browser."""
    parsed = ua_parser.parse(agent)
    browser = parsed.user_agent.family if parsed.user_agent else _UNKNOWN
    browser = _BROWSERS.get(browser, browser)
    device = parsed.device.family if parsed.device else _UNKNOWN
    system = parsed.os.family if parsed.os else _UNKNOWN
    where = device if device in _APPLE_DEVICES else _SYSTEMS.get(system, system)
    if browser == _UNKNOWN and where == _UNKNOWN:
        return (agent if len(agent) <= _LONGEST else agent[: _LONGEST - 1] + "…"), None
    return (None if browser == _UNKNOWN else browser), (None if where == _UNKNOWN else where)
