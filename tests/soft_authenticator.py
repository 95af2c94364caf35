"""A software WebAuthn authenticator for the test client: makes the JSON a browser's
``navigator.credentials.create()`` / ``.get()`` would send, from options the server gave,
with an ES256 key it keeps. Every field can be bent to test what the server refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """One resident credential: its id, key, the user handle it was made for, its counter."""

    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """Resident credentials by RP id, as a platform authenticator with user verification."""

    origin: str = "http://localhost"
    credentials: list[Credential] = field(default_factory=list)

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """A registration response to ``options`` (``origin``/``rp_id``: lie about them;
        ``credential_id``: reuse one)."""
        rp = rp_id or options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        credential = Credential(
            credential_id or secrets.token_bytes(32), key, rp, unb64(options["user"]["id"])
        )
        attested = bytes(16) + struct.pack(">H", 32) + credential.credential_id + cose
        auth_data = (
            hashlib.sha256(rp.encode()).digest() + bytes([UP | UV | AT]) + struct.pack(">I", 0)
        ) + attested
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(credential)
        return {
            "id": b64(credential.credential_id),
            "rawId": b64(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """An assertion for ``options`` by the last credential of its RP (or ``credential``);
        the counter goes up by one unless ``sign_count`` says otherwise."""
        rp = rp_id or options["rpId"]
        found = credential or [c for c in self.credentials if c.rp_id == options["rpId"]][-1]
        found.sign_count = found.sign_count + 1 if sign_count is None else sign_count
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([UP | UV])
            + struct.pack(">I", found.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = found.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64(found.credential_id),
            "rawId": b64(found.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(found.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        return json.dumps({**data, "crossOrigin": False}).encode()
