"""Sign-in throttling: growing delays, then a hard cap, per identifier and per client address.

Counters live in the database (one row per key), so every server and process
sees the same count. A refused attempt never runs the password hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import to_ms
from .errors import LuciaError
from .storage import Storage


@dataclass(frozen=True)
class Policy:
    """``free`` failures pass; then delays double from 1 s up to ``max_delay``; at
    ``max_failures`` within ``window`` the key is locked until the window ends."""

    free: int
    max_failures: int
    window: int
    max_delay: int

    def wait(self, failures: int, window_start: int, last_failure: int, now: int) -> int:
        """Milliseconds until this key may try again (0: now)."""
        if now - window_start >= self.window:
            return 0
        if failures >= self.max_failures:
            return window_start + self.window - now
        if failures < self.free:
            return 0
        delay = min(1000 << min(failures - self.free, 40), self.max_delay)
        return max(0, last_failure + delay - now)


class Throttle:
    """Checks and counts failed sign-ins of one app."""

    def __init__(self, storage: Storage, config: Mapping[str, Any]) -> None:
        self.storage = storage
        self.enabled = bool(config["LUCIA_THROTTLE"])
        window = to_ms(config["LUCIA_THROTTLE_WINDOW"], "LUCIA_THROTTLE_WINDOW")
        max_delay = to_ms(config["LUCIA_THROTTLE_MAX_DELAY"], "LUCIA_THROTTLE_MAX_DELAY")
        self.identifier = Policy(
            int(config["LUCIA_THROTTLE_FREE_ATTEMPTS"]),
            int(config["LUCIA_THROTTLE_MAX_FAILURES"]),
            window,
            max_delay,
        )
        self.address = Policy(
            int(config["LUCIA_THROTTLE_IP_FREE_ATTEMPTS"]),
            int(config["LUCIA_THROTTLE_IP_MAX_FAILURES"]),
            window,
            max_delay,
        )

    @staticmethod
    def keys(provider_id: str, address: str | None) -> list[str]:
        """The counters a sign-in touches: its identifier, and its client address if known."""
        return [f"id:{provider_id}"] + ([f"ip:{address}"] if address else [])

    def check(self, keys: Sequence[str], now: int) -> None:
        """Raise ``AUTH_TOO_MANY_ATTEMPTS`` (with ``retry_after``) while any key must wait."""
        if not self.enabled:
            return
        wait = 0
        for key, failures, window_start, last_failure in self.storage.failures(keys):
            policy = self.address if key.startswith("ip:") else self.identifier
            wait = max(wait, policy.wait(failures, window_start, last_failure, now))
        if wait:
            raise LuciaError("AUTH_TOO_MANY_ATTEMPTS", retry_after=-(-wait // 1000))

    def failed(self, keys: Sequence[str], now: int) -> None:
        """Count a failed attempt against every key."""
        if self.enabled:
            for key in keys:
                self.storage.record_failure(key, now, self.identifier.window)

    def succeeded(self, provider_id: str) -> None:
        """A successful sign-in resets its identifier's counter (not the address's)."""
        if self.enabled:
            self.storage.clear_failures(f"id:{provider_id}")
