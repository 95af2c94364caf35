"""The one clock flask-lucia reads: every expiry, window and timestamp comes from here.

Tests freeze it by replacing this module's ``time`` (``tests/conftest.py``'s ``clock``).
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """The current time as unix milliseconds."""
    return int(time.time() * 1000)
