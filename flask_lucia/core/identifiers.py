"""Identifiers: the one normalization sign-up, sign-in, throttling and lookups share.

The ``email`` provider trims and lowercases (so ``Victim@Example.com`` is
``victim@example.com``); every other provider trims and NFKC-normalizes. New email
identifiers are checked with ``email-validator`` (syntax only, no DNS).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email

#: The provider whose identifiers are email addresses.
EMAIL = "email"


def normalize(provider: str, identifier: object, max_length: int) -> str:
    """``identifier`` as stored and looked up; non-strings, blanks and overlong ones refused.

    The length is checked before normalizing too, so a huge identifier costs nothing.
    """
    if not isinstance(identifier, str):
        raise TypeError(f"identifier must be a str, not {type(identifier).__name__}")
    trimmed = identifier.strip()
    _check_length(trimmed, max_length)
    if provider == EMAIL:
        normalized = trimmed.lower()
    else:
        normalized = unicodedata.normalize("NFKC", trimmed).strip()
    _check_length(normalized, max_length)
    return normalized


def check_new(provider: str, identifier: str) -> None:
    """Refuse a new identifier its provider cannot have: an email must be an address."""
    if provider != EMAIL:
        return
    try:
        validate_email(identifier, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"identifier is not a valid email address: {exc}") from None


def _check_length(identifier: str, max_length: int) -> None:
    if not identifier:
        raise ValueError("identifier must not be empty")
    if len(identifier) > max_length:
        raise ValueError(f"identifier must be at most {max_length} characters")


def password_providers(config: Mapping[str, Any]) -> tuple[str, ...]:
    """``LUCIA_PASSWORD_PROVIDERS`` (else ``LUCIA_PASSWORD_PROVIDER`` alone): distinct
    provider names without ":"; the first is ``LUCIA_PASSWORD_PROVIDER``'s role."""
    value = config.get("LUCIA_PASSWORD_PROVIDERS")
    if value is None:
        value = [config["LUCIA_PASSWORD_PROVIDER"]]
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or len(set(names)) != len(names):
        raise ValueError("LUCIA_PASSWORD_PROVIDERS must list distinct provider names")
    for name in names:
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"LUCIA_PASSWORD_PROVIDERS: {name!r} is not a provider name")
    return names
