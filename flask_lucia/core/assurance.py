"""How a session was made (DESIGN §19): its methods (``amr``, RFC 8176's names where there
is one) and its assurance level (``aal``): 1 for one factor, 2 for two.

A session stores its methods as one short text column (``"pwd otp"``), read in the same
row as the rest of the session on the request path.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The methods a way in or a step can name; ``oauth:<name>`` names a provider.
METHODS = frozenset({"pwd", "otp", "recovery", "passkey", "link", "code", "device"})
#: Methods that prove a second factor: with any of them a session is aal 2. A passkey
#: with user verification is two factors by itself (something held, and a PIN or body).
SECOND_FACTORS = frozenset({"otp", "recovery", "passkey", "device"})
#: The longest stored form (the column's width).
MAX_STORED = 64


def check(amr: Iterable[str]) -> tuple[str, ...]:
    """``amr`` as a tuple of known method names without repeats, in order; ``ValueError``
    for anything else."""
    found: list[str] = []
    for method in amr:
        known = method in METHODS or (
            isinstance(method, str)
            and method.startswith("oauth:")
            and method[6:].replace("_", "").replace("-", "").isalnum()
        )
        if not known:
            raise ValueError(f"unknown sign-in method {method!r}")
        if method not in found:
            found.append(method)
    if len(" ".join(found)) > MAX_STORED:
        raise ValueError("too many sign-in methods")
    return tuple(found)


def encode(amr: Iterable[str]) -> str:
    """The stored form: the names separated by spaces."""
    return " ".join(check(amr))


def decode(stored: str | None) -> tuple[str, ...]:
    """The methods of a stored form (a row made before methods were recorded: none)."""
    return tuple(stored.split()) if stored else ()


def level(amr: Iterable[str]) -> int:
    """The assurance level of a set of methods: 2 with a second factor, else 1."""
    return 2 if SECOND_FACTORS.intersection(amr) else 1
