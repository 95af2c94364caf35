"""Sign-in throttling: growing delays, then a hard cap, per identifier and per client address,
or per trusted device (``devices``) for a browser that signed in to the account before.

Counters live in the database (one row per key), so every server and process
sees the same count. An attempt is counted *before* its password is checked, by
one statement that checks the key may try and counts it (a failure in flight);
a success gives it back. However many requests arrive at once, no more password
checks run than the budget allows, and a refused attempt never runs the hash.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from flask_lucia.config import to_ms
from flask_lucia.core.store.storage import Storage
from flask_lucia.errors import LuciaError

#: The longest doubling of the delay (1 s << 40, some 35 years): beyond it, it stays.
_MAX_SHIFT = 40


@dataclass(frozen=True)
class Policy:
    """``free`` failures pass; then delays double from 1 s up to ``max_delay``; at
    ``max_failures`` within ``window`` the key is locked until the window ends."""

    free: int
    max_failures: int
    window: int
    max_delay: int

    def delay(self, failures: int) -> int:
        """Milliseconds the next attempt must come after the latest of ``failures``."""
        if failures < self.free:
            return 0
        return min(1000 << min(failures - self.free, _MAX_SHIFT), self.max_delay)

    def wait(self, failures: int, window_start: int, last_failure: int, now: int) -> int:
        """Milliseconds until this key may try again (0: now)."""
        if now - window_start >= self.window:
            return 0
        if failures >= self.max_failures:
            return window_start + self.window - now
        if failures < self.free:
            return 0
        return max(0, last_failure + self.delay(failures) - now)

    def admits(self, row: Any, now: int) -> sa.ColumnElement[bool]:
        """``wait(...) == 0`` in SQL over a throttle row's columns, so that checking a key
        and counting an attempt against it are one statement."""
        failures = row.failures
        stale = row.window_start <= now - self.window
        steps = []  # the delays below the cap, one per failure count past the free ones
        for shift in range(_MAX_SHIFT + 1):
            if 1000 << shift >= self.max_delay:
                break
            steps.append((failures == self.free + shift, _int(1000 << shift)))
        longest = _int(min(1000 << _MAX_SHIFT, self.max_delay))
        delay = sa.case(*steps, else_=longest) if steps else longest
        return sa.or_(
            stale,
            sa.and_(
                failures < self.max_failures,
                sa.or_(failures < self.free, row.last_failure + delay <= now),
            ),
        )


def _int(value: int) -> sa.ColumnElement[int]:
    """A whole number from the config, written into the statement (its text stays fixed)."""
    return sa.literal_column(str(int(value)), sa.BigInteger)


def address_key(address: str) -> str:
    """The counter of a client address: IPv4 per address, IPv6 per /64 (a subscriber gets
    a whole /64, so per address would be no limit), IPv4-mapped IPv6 as its IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone
    except ValueError:
        return address[:128]  # not an IP address (a Unix socket): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Throttle:
    """Reserves, refuses and forgives sign-in attempts of one app."""

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
    def keys(provider_id: str, address: str | None, device: str | None = None) -> list[str]:
        """The counters a sign-in touches: a trusted device's own (``device``: the nonce of
        its cookie for this account); else its identifier, and its client address if
        known (per ``address_key``)."""
        if device is not None:
            return [f"dev:{device}"]
        return [f"id:{provider_id}"] + ([f"ip:{address_key(address)}"] if address else [])

    def policy(self, key: str) -> Policy:
        """The policy a counter runs on: a device's is its identifier's."""
        return self.address if key.startswith("ip:") else self.identifier

    def reserve(self, keys: Sequence[str], now: int) -> tuple[str, ...]:
        """Count an attempt against every key before its password is checked; the keys
        counted. Raise ``AUTH_TOO_MANY_ATTEMPTS`` (with ``retry_after``), counting none,
        while any key must wait."""
        if not self.enabled or not keys:
            return ()
        row = self.storage.throttle.c
        admits = {key: self.policy(key).admits(row, now) for key in keys}
        for _ in range(2):
            if self.storage.reserve(admits, now, self.identifier.window):
                return tuple(keys)
            wait = self.wait(keys, now)
            if wait:
                raise LuciaError("AUTH_TOO_MANY_ATTEMPTS", retry_after=-(-wait // 1000))
            # Admitted after all: a racing server created the counter meanwhile. Again.
        raise LuciaError("AUTH_TOO_MANY_ATTEMPTS", retry_after=1)

    def wait(self, keys: Sequence[str], now: int) -> int:
        """Milliseconds until every key may try again (0: now)."""
        wait = 0
        for key, failures, window_start, last_failure in self.storage.failures(keys):
            wait = max(wait, self.policy(key).wait(failures, window_start, last_failure, now))
        return wait

    def succeeded(self, reserved: Sequence[str]) -> None:
        """A success is no failure: its identifier's (or device's) counter is cleared, and
        the attempt counted against its address is given back (the rest of that count
        stays)."""
        if reserved:
            addresses = [key for key in reserved if key.startswith("ip:")]
            cleared = [key for key in reserved if not key.startswith("ip:")]
            self.storage.forgive(cleared, addresses)
