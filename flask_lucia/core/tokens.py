"""Random strings and tokens: generate, digest, and check their shape before any lookup."""

from __future__ import annotations

import functools
import hashlib
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
#: 32 characters of a 62-letter alphabet: 190 bits, above ASVS's 128.
TOKEN_LENGTH = 32
#: Leading characters that every refresh token of one session shares (its family, 59 bits);
#: the other 22 characters (131 bits) are drawn anew for each token.
FAMILY_LENGTH = 10
_ALPHABET_SET = frozenset(ALPHABET)


def generate_random_string(length: int, alphabet: str = ALPHABET) -> str:
    """Return ``length`` characters drawn from ``alphabet`` by the OS CSPRNG."""
    if not isinstance(length, int) or isinstance(length, bool):
        raise TypeError("length must be an int")
    if length < 0:
        raise ValueError("length must not be negative")
    if not alphabet:
        raise ValueError("alphabet must not be empty")
    table = _byte_table(alphabet)
    if table is None:  # not single bytes: one draw per character
        return "".join(secrets.choice(alphabet) for _ in range(length))
    drawn = ""
    while len(drawn) < length:  # rejection sampling: bytes past the last full cycle are dropped
        drawn += secrets.token_bytes(length + 16).translate(*table).decode("ascii")
    return drawn[:length]


@functools.lru_cache(maxsize=8)
def _byte_table(alphabet: str) -> tuple[bytes, bytes] | None:
    """``bytes.translate`` arguments mapping a random byte to a letter without bias.

    Byte ``b`` becomes ``alphabet[b % n]`` when ``b`` is below the largest multiple of
    ``n`` that fits in a byte; larger bytes are deleted, so every letter is equally likely.
    """
    n = len(alphabet)
    if n > 256 or not alphabet.isascii():
        return None
    cutoff = 256 - 256 % n
    table = bytes(ord(alphabet[b % n]) if b < cutoff else 0 for b in range(256))
    return table, bytes(range(cutoff, 256))


def new_token() -> str:
    """A fresh access or refresh token (raw; only its digest is ever stored)."""
    return generate_random_string(TOKEN_LENGTH)


def new_refresh_token(family_of: str | None = None) -> str:
    """A fresh refresh token in the family of ``family_of`` (a token of the same session),
    or in a new family; only the rest is new, and only its digest is ever stored."""
    family = (
        generate_random_string(FAMILY_LENGTH) if family_of is None else family_of[:FAMILY_LENGTH]
    )
    return family + generate_random_string(TOKEN_LENGTH - FAMILY_LENGTH)


def family_digest(token: str) -> str:
    """The digest a refresh token's family is stored under; no token has it as its own."""
    return hashlib.sha256(b"lucia-family:" + token[:FAMILY_LENGTH].encode("ascii")).hexdigest()


def digest(token: str) -> str:
    """The SHA-256 hex digest stored in place of a token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_well_formed(token: object) -> bool:
    """True when ``token`` could be one of ours; garbage never reaches the database."""
    return isinstance(token, str) and len(token) == TOKEN_LENGTH and _ALPHABET_SET.issuperset(token)


def checksum(session_id: str) -> str:
    """A public checksum of a session id, safe to show to scripts and other tabs."""
    return hashlib.sha256(b"lucia-session:" + session_id.encode()).hexdigest()[:32]


def _pad(token: str) -> bytes:
    return hashlib.sha512(b"lucia-successor:" + token.encode("ascii")).digest()


def seal(token: str, access_token: str, refresh_token: str) -> bytes:
    """Seal a token's successor pair so only a holder of ``token`` can open it.

    The pad is a hash of the raw token, which is never stored: a copy of the
    database cannot open it, a tab that still holds the token can.
    """
    payload = (access_token + refresh_token).encode("ascii")
    return bytes(a ^ b for a, b in zip(payload, _pad(token), strict=True))


def unseal(token: str, sealed: bytes) -> tuple[str, str]:
    """The ``(access_token, refresh_token)`` successor that ``seal`` hid."""
    plain = bytes(a ^ b for a, b in zip(sealed, _pad(token), strict=True)).decode("ascii")
    return plain[:TOKEN_LENGTH], plain[TOKEN_LENGTH:]
