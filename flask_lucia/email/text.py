"""What the email flows check and say: a plain address, a duration in words."""

from __future__ import annotations

import math
from email.errors import HeaderParseError
from email.headerregistry import Address

from flask_lucia.i18n import ngettext


def is_address(address: str) -> bool:
    """One plain ``local@domain`` address that a ``To`` header holds as exactly itself."""
    if '"' in address or "." not in address.rpartition("@")[2].strip("."):
        return False
    try:
        return Address(addr_spec=address).addr_spec == address
    except (ValueError, HeaderParseError):  # header defects are ValueErrors
        return False


def duration(ms: int) -> str:
    """A duration in words, rounded up: "45 seconds", "2 minutes", "1 hour", "1 day"."""
    seconds = max(1, math.ceil(ms / 1000))
    if seconds < 60:
        return _count(seconds, "second")
    minutes = math.ceil(seconds / 60)
    if minutes < 120 and minutes % 60:
        return _count(minutes, "minute")
    hours = math.ceil(minutes / 60)
    if hours < 48 and hours % 24:
        return _count(hours, "hour")
    return _count(math.ceil(hours / 24), "day")


def _count(number: int, unit: str) -> str:
    if unit == "second":
        return ngettext("%(num)d second", "%(num)d seconds", number)
    if unit == "minute":
        return ngettext("%(num)d minute", "%(num)d minutes", number)
    if unit == "hour":
        return ngettext("%(num)d hour", "%(num)d hours", number)
    return ngettext("%(num)d day", "%(num)d days", number)
