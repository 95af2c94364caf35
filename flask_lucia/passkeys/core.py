"""Passkeys (WebAuthn, DESIGN §15) over the ``webauthn`` package: the ceremonies' options,
their verification, and the stored credentials. Reads no request: the views pass in the
relying party (``RelyingParty``) and what binds a challenge to its browser.

A challenge is random, kept only as a SHA-256 digest, used once (taking it is one
DELETE), lives five minutes, and is bound to the session that asked for a registration
or to the browser (a cookie's nonce) that asked for a sign-in. Registration and sign-in
both require user verification, so a passkey sign-in counts as MFA.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_lucia import signals
from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.core.refusals import RequestError
from flask_lucia.core.tokens import generate_random_string
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import N_, gettext
from flask_lucia.passkeys.store import PasskeyStore
from flask_lucia.types import from_ms

logger = logging.getLogger(__name__)

#: How long a challenge may be answered (ms), and what the browser is told (ms).
CHALLENGE_TTL = 5 * 60 * 1000
CEREMONY_TIMEOUT = 2 * 60 * 1000
#: The longest passkey name kept, and the name of one registered without a name.
MAX_NAME = 100
DEFAULT_NAME = "Passkey"
#: The largest credential JSON looked at (credential ids are at most 1023 bytes).
_MAX_FIELD = 16 * 1024
#: How deep a credential's JSON may nest (a real one: 3 levels).
_MAX_DEPTH = 8
_TRANSPORTS = frozenset({"usb", "nfc", "ble", "smart-card", "hybrid", "internal", "cable"})
#: What the user is told when the WebAuthn library refuses a response; its own reason
#: (an origin, an RP id, a flag) is for the log, not for the person at the keyboard.
REFUSED = N_("This passkey could not be checked. Try again, or use another sign-in method.")
ALREADY_REGISTERED = N_("This passkey is already registered.")


@dataclass(frozen=True)
class RelyingParty:
    """Who asks: the RP id (a domain), its name, and the origins its pages are served from."""

    id: str
    name: str
    origins: tuple[str, ...]


@dataclass(frozen=True)
class Passkey:
    """A registered passkey as its owner sees it (never its key or credential id)."""

    id: str
    name: str
    transports: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: times as unix milliseconds (the browser's unit)."""
        last = self.last_used_at
        return {
            "id": self.id,
            "name": self.name,
            "transports": list(self.transports),
            "created_at": int(self.created_at.timestamp() * 1000),
            "last_used_at": None if last is None else int(last.timestamp() * 1000),
        }


def _webauthn() -> Any:
    try:
        import webauthn
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise RuntimeError('passkeys need: pip install "flask-lucia[mfa]"') from exc
    return webauthn


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the ``webauthn`` package is installed (the ``mfa`` extra)."""
    try:
        import webauthn  # noqa: F401
    except ImportError:  # pragma: no cover - the extra is installed in tests
        return False
    return True


def b64url(data: bytes) -> str:
    """Unpadded base64url, WebAuthn's JSON encoding of bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _refused(ceremony: str, exc: Exception) -> RequestError:
    """The 400 for a response the WebAuthn library refused: the user's words in the
    answer, the library's reason in the log."""
    logger.warning("passkey %s refused by the verifier: %s: %s", ceremony, type(exc).__name__, exc)
    return RequestError(REFUSED)


def _challenge_digest(challenge: bytes) -> str:
    return hashlib.sha256(b"lucia-webauthn:" + challenge).hexdigest()


def _name(value: object) -> str:
    """A passkey name: trimmed, at most ``MAX_NAME`` characters, without control characters."""
    if value is None:
        return DEFAULT_NAME
    if not isinstance(value, str):
        raise RequestError("'name' must be a string")
    name = " ".join(value.split())
    if len(name) > MAX_NAME:
        raise RequestError(gettext("'name' must be at most %(num)d characters", num=MAX_NAME))
    return name or DEFAULT_NAME


def check_name(value: object) -> str:
    """A new name for a passkey (rename): a non-empty string of at most ``MAX_NAME``."""
    if not isinstance(value, str) or not value.strip():
        raise RequestError("'name' must be a non-empty string")
    return _name(value)


def _too_large(credential: object) -> bool:
    """A response no browser sends: a string field too long, a list too long, or nesting
    too deep (checked before parsing, without recursion)."""
    stack = [(credential, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            if len(value) > 16:
                return True
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and len(value) > _MAX_FIELD:
            return True
    return False


class Passkeys:
    """The passkeys of one app: registration, discoverable sign-in, list, rename, delete."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self.store = PasskeyStore(auth.storage)

    # -- registration -----------------------------------------------------------------

    def registration_options(
        self, user_id: Any, user_name: str, session_id: str, rp: RelyingParty
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.create()``: a resident (discoverable) key with
        user verification, the user's random handle, and the passkeys it has excluded."""
        wa = _webauthn()
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            PublicKeyCredentialDescriptor,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        handle = self.store.user_handle(user_id) or b64url(secrets.token_bytes(32))
        exclude = [
            PublicKeyCredentialDescriptor(id=wa.base64url_to_bytes(row[2]))
            for row in self.store.user_passkeys(user_id)
        ]
        challenge = secrets.token_bytes(32)
        options = wa.generate_registration_options(
            rp_id=rp.id,
            rp_name=rp.name,
            user_name=user_name,
            user_id=wa.base64url_to_bytes(handle),
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=exclude,
        )
        now = now_ms()
        digest = _challenge_digest(challenge)
        self.store.add_challenge(digest, "register", session_id, handle, now + CHALLENGE_TTL, now)
        return self._options_dict(options)

    def register(
        self, user: Any, session_id: str, credential: object, name: object, rp: RelyingParty
    ) -> Passkey:
        """Verify a ``create()`` response to a challenge this session asked for, and store
        the passkey; ``RequestError`` (400) for anything else, storing nothing."""
        wa = _webauthn()
        from webauthn.helpers import parse_client_data_json, parse_registration_credential_json

        name = _name(name)
        if _too_large(credential):
            raise RequestError("The passkey response is too large.")
        try:
            parsed = parse_registration_credential_json(credential)  # type: ignore[arg-type]
            challenge = parse_client_data_json(parsed.response.client_data_json).challenge
        except Exception as exc:  # every parse failure is the same bad input
            raise RequestError("The passkey response is malformed.") from exc
        taken = self.store.take_challenge(
            _challenge_digest(challenge), "register", session_id, now_ms()
        )
        if taken is None or taken[0] is None:
            raise RequestError("This passkey challenge is unknown, used, expired or not yours.")
        try:
            verified = wa.verify_registration_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=list(rp.origins),
                require_user_verification=True,
            )
        except Exception as exc:  # the library's reasons go to the log, not the client
            raise _refused("registration", exc) from exc
        if not hmac.compare_digest(verified.credential_id, parsed.raw_id):
            raise RequestError("The passkey response names another credential than it attests.")
        transports = [t.value for t in parsed.response.transports or () if t.value in _TRANSPORTS]
        now = now_ms()
        values = {
            "id": generate_random_string(24),
            "credential_id": b64url(verified.credential_id),
            "user_id": self.auth.users.id_of(user),
            "user_handle": taken[0],
            "public_key": verified.credential_public_key,
            "sign_count": verified.sign_count,
            "transports": ",".join(transports),
            "name": name,
            "created_at": now,
            "last_used_at": None,
        }
        if len(values["credential_id"]) > 1400 or not self.store.add_passkey(values):
            raise RequestError(ALREADY_REGISTERED)
        passkey = Passkey(values["id"], name, tuple(transports), from_ms(now), None)
        self.auth.forget_trusted_browsers(values["user_id"])  # the factors changed
        signals.send(signals.passkey_registered, user=user, passkey=passkey)
        return passkey

    # -- sign-in ----------------------------------------------------------------------

    def sign_in_options(self, binding: str, rp: RelyingParty) -> dict[str, Any]:
        """Options for ``navigator.credentials.get()`` with no username: any passkey of
        this site (discoverable), user verification required."""
        wa = _webauthn()
        from webauthn.helpers.structs import UserVerificationRequirement

        challenge = secrets.token_bytes(32)
        options = wa.generate_authentication_options(
            rp_id=rp.id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        now = now_ms()
        digest = _challenge_digest(challenge)
        self.store.add_challenge(digest, "sign-in", binding, None, now + CHALLENGE_TTL, now)
        return self._options_dict(options)

    def authenticate(self, credential: object, binding: str, rp: RelyingParty) -> Any:
        """Verify a ``get()`` response to a challenge this browser asked for; the user id of
        its passkey, whose sign count and last use are recorded. A count that did not go
        up (a cloned authenticator) is refused and logged. ``RequestError`` otherwise."""
        wa = _webauthn()
        from webauthn.helpers import parse_authentication_credential_json, parse_client_data_json

        if _too_large(credential):
            raise RequestError("The passkey response is too large.")
        try:
            parsed = parse_authentication_credential_json(credential)  # type: ignore[arg-type]
            challenge = parse_client_data_json(parsed.response.client_data_json).challenge
        except Exception as exc:  # every parse failure is the same bad input
            raise RequestError("The passkey response is malformed.") from exc
        now = now_ms()
        if self.store.take_challenge(_challenge_digest(challenge), "sign-in", binding, now) is None:
            raise RequestError("This passkey challenge is unknown, used, expired or not yours.")
        row = self.store.passkey_by_credential(b64url(parsed.raw_id))
        if row is None:
            raise RequestError("This passkey is not registered here.")
        passkey_id, user_id, handle, public_key, stored = row
        presented = parsed.response.user_handle
        if presented is None or not hmac.compare_digest(b64url(presented), handle):
            raise RequestError("This passkey does not belong to the account it names.")
        try:
            verified = wa.verify_authentication_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=list(rp.origins),
                credential_public_key=public_key,
                credential_current_sign_count=0,  # compared below, after the signature
                require_user_verification=True,
            )
        except Exception as exc:  # the library's reasons go to the log, not the client
            raise _refused("sign-in", exc) from exc
        count = verified.new_sign_count
        if (count > 0 or stored > 0) and count <= stored:
            logger.warning(
                "passkey %s of user %s: sign count %d after %d; refused (a cloned authenticator?)",
                passkey_id,
                user_id,
                count,
                stored,
            )
            raise RequestError("This passkey's signature counter went backwards; it was refused.")
        if not self.store.use_passkey(passkey_id, stored, count, now_ms()):
            raise RequestError("This passkey was used at the same moment elsewhere; try again.")
        return user_id

    # -- the user's passkeys -------------------------------------------------------------

    def list(self, user_id: Any) -> list[Passkey]:
        """A user's passkeys, oldest first."""
        return [self._passkey(row) for row in self.store.user_passkeys(user_id)]

    def rename(self, user_id: Any, passkey_id: str, name: object) -> Passkey:
        """Rename one of the user's passkeys (404 when it is not theirs)."""
        new = check_name(name)
        if len(passkey_id) > 32 or not self.store.rename_passkey(user_id, passkey_id, new):
            raise _not_found()
        return next(p for p in self.list(user_id) if p.id == passkey_id)

    def delete(self, user: Any, passkey_id: str) -> Passkey:
        """Delete one of the user's passkeys (404 when not theirs); it signs in no more."""
        user_id = self.auth.users.id_of(user)
        found = [p for p in self.list(user_id) if p.id == passkey_id]
        if not found or self.store.delete_passkey(user_id, passkey_id) is None:
            raise _not_found()
        self.auth.forget_trusted_browsers(user_id)  # the factors changed
        signals.send(signals.passkey_removed, user=user, passkey=found[0])
        return found[0]

    def delete_all(self, user: Any) -> int:
        """Delete every passkey of a user (support staff); how many went."""
        user_id = self.auth.users.id_of(user)
        passkeys = self.list(user_id)
        removed = self.store.delete_passkeys(user_id)
        self.auth.forget_trusted_browsers(user_id)
        for passkey in passkeys:
            signals.send(signals.passkey_removed, user=user, passkey=passkey)
        return removed

    @staticmethod
    def _passkey(row: Sequence[Any]) -> Passkey:
        passkey_id, name, _, transports, created, last_used = row
        return Passkey(
            id=passkey_id,
            name=name,
            transports=tuple(t for t in transports.split(",") if t),
            created_at=from_ms(created),
            last_used_at=None if last_used is None else from_ms(last_used),
        )

    @staticmethod
    def _options_dict(options: Any) -> dict[str, Any]:
        from webauthn.helpers import options_to_json_dict

        found: dict[str, Any] = options_to_json_dict(options)
        return found


def _not_found() -> LuciaError:
    return RequestError("No such passkey.", 404)
