"""TOTP secrets at rest (DESIGN §18): AES-256-GCM under ``LUCIA_SECRET_KEYS``.

A stored secret is ``$1$<key id>$<base64url(nonce | ciphertext | tag)>``:

- The AES key is never a configured key itself: HKDF-SHA256 derives it from each key
  with the label ``flask-lucia totp``, so the app's ``SECRET_KEY`` (the default) signs
  its cookies as before and nothing here can be used to forge them, or the reverse.
- The key id (4 bytes, derived with another label, so it tells nothing of the AES key)
  names the key a secret was sealed with: keys rotate by putting a new one first
  (seal with the first, open with whichever the id names); a secret opened with an
  older key is sealed again with the newest one on its next good code.
- The associated data is the user id: a ciphertext copied into another user's row
  does not open.

AES-GCM rather than ``MultiFernet``: Fernet has no associated data, and binding each
secret to its row is what stops a database writer from moving a known secret onto a
victim's account.

``cryptography`` comes with ``pip install "flask-lucia[mfa]"`` and is imported on first
use; ``secret_keys`` (the config check) needs nothing.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from typing import Any

#: The HKDF label of the AES keys, and of the key ids.
PURPOSE = b"flask-lucia totp"
KEY_ID_PURPOSE = b"flask-lucia totp key id"
#: The start of every sealed secret; base32 (what older releases stored) never has a "$".
PREFIX = "$1$"
#: The fewest characters (or bytes) a key of ``LUCIA_SECRET_KEYS`` may have: 32 random
#: bytes as ``secrets.token_urlsafe(32)`` are 43.
MIN_KEY_LENGTH = 32
NONCE_SIZE = 12
HOW_TO_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class SecretUnreadable(Exception):
    """A stored secret that does not open: sealed under a key that is not configured
    (any more), moved from another row, altered, or never sealed."""


def secret_keys(config: Mapping[str, Any]) -> tuple[bytes, ...] | None:
    """The key material TOTP secrets are sealed under, newest first: ``LUCIA_SECRET_KEYS``
    when set (checked: a list of keys of at least 32 characters, no repeats), else the
    app's ``SECRET_KEY`` and its ``SECRET_KEY_FALLBACKS``; None when there is none.

    With ``LUCIA_SECRET_KEYS`` set, ``SECRET_KEY`` and its fallbacks still open (never
    seal) what was sealed under them before it was, so that giving TOTP a key of its
    own signs nobody out of it: each secret moves to the new key on its next use."""
    value = config.get("LUCIA_SECRET_KEYS")
    default = _from_secret_key(config)
    if value is None:
        return default
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(
            "LUCIA_SECRET_KEYS must be a list of keys, newest first (a single key too: "
            f"[key]), not {type(value).__name__}"
        )
    if not value:
        raise ValueError("LUCIA_SECRET_KEYS must hold at least one key (or be None)")
    keys = []
    for position, key in enumerate(value, 1):
        if not isinstance(key, (str, bytes)):
            raise TypeError(
                f"LUCIA_SECRET_KEYS: key {position} must be a str or bytes, "
                f"not {type(key).__name__}"
            )
        raw = key.encode() if isinstance(key, str) else key
        if len(raw.strip()) < MIN_KEY_LENGTH:
            raise ValueError(
                f"LUCIA_SECRET_KEYS: key {position} is shorter than {MIN_KEY_LENGTH} "
                f"characters; make one with {HOW_TO_MAKE_ONE}"
            )
        if raw in keys:
            raise ValueError(f"LUCIA_SECRET_KEYS: key {position} repeats an earlier key")
        keys.append(raw)
    return (*keys, *(key for key in default or () if key not in keys))


def _from_secret_key(config: Mapping[str, Any]) -> tuple[bytes, ...] | None:
    """The app's secret key, then its fallbacks, as key material (derived from by HKDF,
    never used as they are)."""
    secret = config.get("SECRET_KEY")
    if not secret:
        return None
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    keys: list[bytes] = []
    for key in [secret, *fallbacks]:
        if not isinstance(key, (str, bytes)):
            raise TypeError(
                "SECRET_KEY and SECRET_KEY_FALLBACKS must be str or bytes, "
                f"not {type(key).__name__}"
            )
        raw = key.encode() if isinstance(key, str) else key
        if raw and raw not in keys:
            keys.append(raw)
    return tuple(keys)


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise RuntimeError('two-factor sign-in needs: pip install "flask-lucia[mfa]"') from exc
    return hashes, AESGCM, HKDF


def _derive(material: bytes, label: bytes, length: int) -> bytes:
    hashes, _, hkdf = _crypto()
    derived: bytes = hkdf(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(
        material
    )
    return derived


def _associated_data(key_id: str, user_id: Any) -> bytes:
    """What a ciphertext is bound to: its format, its key id and its row's user id."""
    return PREFIX.encode() + key_id.encode() + b"\x00" + str(user_id).encode("utf-8")


def is_sealed(stored: str) -> bool:
    """Whether a stored value is a sealed secret (not base32 as older releases stored)."""
    return stored.startswith(PREFIX)


class SecretBox:
    """Seals and opens one app's TOTP secrets under its keys (newest first)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._materials = tuple(keys)
        self._derived: list[tuple[str, Any]] | None = None

    def __repr__(self) -> str:  # never the keys
        return f"<SecretBox of {len(self._materials)} key(s)>"

    def _keys(self) -> list[tuple[str, Any]]:
        """``(key id, AESGCM)`` of each key, newest first; derived once, on first use."""
        if self._derived is None:
            _, aesgcm, _ = _crypto()
            self._derived = [
                (_derive(m, KEY_ID_PURPOSE, 4).hex(), aesgcm(_derive(m, PURPOSE, 32)))
                for m in self._materials
            ]
        return self._derived

    def seal(self, user_id: Any, secret: str) -> str:
        """``secret`` sealed with the newest key, bound to ``user_id``."""
        key_id, cipher = self._keys()[0]
        nonce = os.urandom(NONCE_SIZE)
        sealed = cipher.encrypt(nonce, secret.encode("ascii"), _associated_data(key_id, user_id))
        payload = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{PREFIX}{key_id}${payload}"

    def open(self, user_id: Any, stored: str) -> tuple[str, bool]:
        """The secret sealed in ``stored`` for ``user_id``, and whether it was sealed with
        an older key than the newest (so it should be sealed again); ``SecretUnreadable``
        when it does not open."""
        if not is_sealed(stored):
            raise SecretUnreadable("it is not encrypted: run 'flask lucia upgrade-db'")
        key_id, _, payload = stored[len(PREFIX) :].partition("$")
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            raise SecretUnreadable("it is malformed") from None
        nonce, sealed = raw[:NONCE_SIZE], raw[NONCE_SIZE:]
        from cryptography.exceptions import InvalidTag

        found = False
        for position, (candidate, cipher) in enumerate(self._keys()):
            if candidate != key_id:
                continue
            found = True
            try:
                plain = cipher.decrypt(nonce, sealed, _associated_data(key_id, user_id))
            except (InvalidTag, ValueError):
                continue
            return plain.decode("ascii"), position > 0
        if not found:
            raise SecretUnreadable(
                f"it was encrypted with key {key_id}, which is not among the configured "
                "keys (LUCIA_SECRET_KEYS, else SECRET_KEY and SECRET_KEY_FALLBACKS)"
            )
        raise SecretUnreadable("it does not decrypt for this user (altered, or another's)")
