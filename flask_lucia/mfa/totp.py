"""TOTP (RFC 6238, through pyotp), its QR code (segno), and recovery codes.

Pure functions of their arguments: no database, no request. pyotp and segno come with
``pip install "flask-lucia[mfa]"`` and are imported on first use, so an app without
the extra still imports flask-lucia.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from flask_lucia.core.tokens import generate_random_string

#: Seconds per time step, and digits per code: what every authenticator app expects.
INTERVAL = 30
DIGITS = 6
#: Time steps either side of now whose code is accepted (clock drift).
DRIFT = 1
#: Base32 letters of a new secret: 32 x 5 = 160 bits (RFC 4226 recommends 160).
SECRET_LENGTH = 32
#: The fewest base32 letters a confirmed secret may have: 26 x 5 = 130 bits (at least 128).
MIN_SECRET_LENGTH = 26
MAX_SECRET_LENGTH = 64

#: Recovery codes: how many, and their characters. 16 characters of 31 (no look-alikes:
#: no i, l, o, 0 or 1) are 79 bits each, so a SHA-256
#: digest is enough to store them. Codes made before (a-z and 2-7) stay valid: a typed code
#: may hold any of both alphabets, and 0 and 1 are read as the o and l they look like.
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_ACCEPTED = frozenset("abcdefghijklmnopqrstuvwxyz23456789")
RECOVERY_LENGTH = 16
#: The longest code input looked at; anything longer is wrong without further work.
MAX_CODE_INPUT = 64


def _pyotp() -> Any:
    try:
        import pyotp
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise RuntimeError('two-factor sign-in needs: pip install "flask-lucia[mfa]"') from exc
    return pyotp


def new_secret() -> str:
    """A new TOTP secret: 32 base32 letters from the OS CSPRNG (160 bits)."""
    return generate_random_string(SECRET_LENGTH, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def check_secret(value: object) -> str:
    """``value`` as an uppercase base32 secret of at least 128 bits; ``ValueError`` if not."""
    if not isinstance(value, str):
        raise ValueError("'secret' must be a string")
    secret = value.replace(" ", "").upper()
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise ValueError(
            f"'secret' must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} base32 letters"
        )
    try:
        base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("'secret' must be base32 (A-Z, 2-7)") from None
    return secret


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    totp = _pyotp().TOTP(secret, digits=DIGITS, interval=INTERVAL)
    uri: str = totp.provisioning_uri(name=account, issuer_name=issuer)
    return uri


def qr_svg(uri: str) -> str:
    """An inline ``<svg>`` QR code of ``uri`` (segno), for the setup page."""
    try:
        import segno
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise RuntimeError('two-factor sign-in needs: pip install "flask-lucia[mfa]"') from exc
    svg: str = segno.make(uri, error="m").svg_inline(scale=4, title="QR code to scan")
    return svg


def step_at(now_ms: int) -> int:
    """The TOTP time step of a unix-milliseconds time."""
    return now_ms // 1000 // INTERVAL


def is_totp_code(code: str) -> bool:
    """Whether a normalized code looks like a TOTP code (six digits) rather than a
    recovery code."""
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, now_ms: int) -> int | None:
    """The time step within ``DRIFT`` of now whose code ``code`` is, or None. Every
    candidate is compared in constant time."""
    if not is_totp_code(code):
        return None
    totp = _pyotp().TOTP(secret, digits=DIGITS, interval=INTERVAL)
    now = step_at(now_ms)
    found = None
    for step in range(now - DRIFT, now + DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def normalize_code(value: str) -> str:
    """A typed code without spaces and dashes, lowercased (recovery codes are shown in
    groups: ``abcd-efgh-...``)."""
    return "".join(c for c in value if c not in " -\t").lower()


def new_recovery_codes() -> list[str]:
    """Ten new recovery codes, shown once, as ``xxxx-xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = generate_random_string(RECOVERY_LENGTH, RECOVERY_ALPHABET)
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_LENGTH, 4)))
    return codes


def recovery_digest(code: str) -> str | None:
    """The stored digest of a recovery code (any spacing or case); None when ``code``
    cannot be one."""
    normalized = normalize_code(code).replace("0", "o").replace("1", "l")
    if len(normalized) != RECOVERY_LENGTH or not set(normalized) <= _ACCEPTED:
        return None
    return hashlib.sha256(b"lucia-recovery:" + normalized.encode("ascii")).hexdigest()
