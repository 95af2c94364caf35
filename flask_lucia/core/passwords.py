"""Password hashing: argon2id, legacy verifiers that upgrade, and the rehash policy."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError
from werkzeug.security import check_password_hash

from flask_lucia.errors import LuciaError
from flask_lucia.i18n import ngettext

_bcrypt: Any
try:  # bcrypt is optional: apps moving from bcrypt install it
    import bcrypt as _bcrypt
except ImportError:  # pragma: no cover - exercised by monkeypatching in tests
    _bcrypt = None


@dataclass(frozen=True)
class Verdict:
    """The result of a verification: did it match, and must the hash be replaced."""

    ok: bool
    needs_rehash: bool = False


class PasswordHasher:
    """argon2id with OWASP defaults; verifies Lucia scrypt, Werkzeug and bcrypt hashes too."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        min_length: int = 8,
        max_length: int = 256,
    ) -> None:
        self._argon2 = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        self.min_length = min_length
        self.max_length = max_length
        # A real hash of a random secret: unknown users are verified against it,
        # so they cost the same time as a wrong password.
        self._dummy = self._argon2.hash("lucia-dummy-password-for-timing")

    def normalize(self, password: object, *, new: bool = False) -> str:
        """NFKC-normalize; reject non-strings, and lengths outside the limits.

        Both limits first count the characters as typed, so an oversized password is
        refused before any work on it; the maximum is checked again after NFKC, which
        can lengthen a password (one ligature is up to three letters).
        """
        if not isinstance(password, str):
            raise TypeError("password must be a str")
        if len(password) > self.max_length:
            raise self._too_long()
        if new and len(password) < self.min_length:
            raise LuciaError(
                "AUTH_INVALID_PASSWORD",
                ngettext(
                    "Password must be at least %(num)d character.",
                    "Password must be at least %(num)d characters.",
                    self.min_length,
                ),
            )
        normalized = unicodedata.normalize("NFKC", password)
        if len(normalized) > self.max_length:
            raise self._too_long()
        return normalized

    def _too_long(self) -> LuciaError:
        return LuciaError(
            "AUTH_INVALID_PASSWORD",
            ngettext(
                "Password must be at most %(num)d character.",
                "Password must be at most %(num)d characters.",
                self.max_length,
            ),
        )

    def hash(self, password: str, *, new: bool = True) -> str:
        """Hash a password (argon2id); ``new=False`` skips the minimum (rehashing old ones)."""
        return self._argon2.hash(self.normalize(password, new=new))

    def verify(self, stored: str | None, password: str) -> Verdict:
        """Check ``password`` against ``stored``; ``stored=None``, and a hash that cannot be
        verified here (``AUTH_OUTDATED_PASSWORD``), cost a dummy verify."""
        if stored is None:
            self._verify_argon2(self._dummy, password)
            return Verdict(ok=False)
        if stored.startswith("$argon2"):
            ok = self._verify_argon2(stored, password)
            return Verdict(ok, ok and self._argon2.check_needs_rehash(stored))
        try:
            return Verdict(self._verify_legacy(stored, password), needs_rehash=True)
        except LuciaError:  # AUTH_OUTDATED_PASSWORD: no faster than a wrong password
            self._verify_argon2(self._dummy, password)
            raise

    def recognizes(self, stored: object) -> bool:
        """Whether ``stored`` is a hash this hasher can verify (to import existing users)."""
        if not isinstance(stored, str) or not 0 < len(stored) <= 512:
            return False
        if stored.startswith(("$argon2", "pbkdf2:", "scrypt:", "$2a$", "$2b$", "$2y$")):
            return True
        parts = stored.split(":")
        if len(parts) == 3 and parts[0] == "s2":
            parts = parts[1:]
        if len(parts) != 2 or not parts[0]:
            return False
        try:
            return len(bytes.fromhex(parts[1])) == 64
        except ValueError:
            return False

    def _verify_argon2(self, stored: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored, unicodedata.normalize("NFKC", password))
        except (VerificationError, InvalidHashError):
            return False

    def _verify_legacy(self, stored: str, password: str) -> bool:
        """Lucia scrypt, Werkzeug pbkdf2/scrypt and bcrypt; anything else is outdated."""
        if stored.startswith(("pbkdf2:", "scrypt:")):
            try:
                return check_password_hash(stored, password)
            except ValueError:
                return False
        if stored.startswith(("$2a$", "$2b$", "$2y$")):
            if _bcrypt is None:
                raise LuciaError(
                    "AUTH_OUTDATED_PASSWORD",
                    "this bcrypt hash needs the 'bcrypt' package to be installed",
                )
            try:
                # bcrypt only ever read 72 bytes; bcrypt>=5 refuses longer input instead.
                return bool(_bcrypt.checkpw(password.encode()[:72], stored.encode()))
            except ValueError:
                return False
        return _verify_lucia_scrypt(stored, password)


def _verify_lucia_scrypt(stored: str, password: str) -> bool:
    """Lucia's ``s2:salt:hex`` (r=16) and older ``salt:hex`` (r=8); N=16384, p=1, 64 bytes."""
    parts = stored.split(":")
    if len(parts) == 3 and parts[0] == "s2":
        salt, key, block_size = parts[1], parts[2], 16
    elif len(parts) == 2:
        salt, key, block_size = parts[0], parts[1], 8
    else:
        raise LuciaError("AUTH_OUTDATED_PASSWORD", "the stored hash has an unknown format")
    try:
        expected = bytes.fromhex(key)
    except ValueError:
        raise LuciaError(
            "AUTH_OUTDATED_PASSWORD", "the stored hash has an unknown format"
        ) from None
    derived = hashlib.scrypt(
        unicodedata.normalize("NFKC", password).encode(),
        salt=salt.encode(),
        n=16384,
        r=block_size,
        p=1,
        dklen=64,
        maxmem=64 * 1024 * 1024,
    )
    return hmac.compare_digest(derived, expected)
