"""A refusal with a status of its own, shared by the second factors (TOTP, passkeys)."""

from __future__ import annotations

from flask_lucia.errors import LuciaError


class RequestError(LuciaError):
    """``AUTH_INVALID_REQUEST`` with a status of its own: 400 for a refused WebAuthn
    response (malformed, replayed, another's challenge, wrong origin or RP id, unknown
    passkey; nothing is stored), 404 for a passkey that is not the user's, 409 for what
    the account's state refuses (TOTP on already)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__("AUTH_INVALID_REQUEST", message)
        self._status = status

    @property
    def status(self) -> int:
        """The HTTP status this error answers with."""
        return self._status
