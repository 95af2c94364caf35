"""The seed API on users and their keys (provider ids): create, authenticate, change,
delete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from flask_lucia import signals
from flask_lucia.core.base import AuthBase
from flask_lucia.core.clock import now_ms
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session


class AccountApi(AuthBase):
    """Users and keys."""

    # -- users ------------------------------------------------------------------

    def create_user(
        self,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        user_data: Mapping[str, Any] | None = None,
        more_keys: Sequence[tuple[str, str]] = (),
    ) -> Any:
        """Create a user keyed by ``provider:identifier``, with an optional password
        (``more_keys``: further ``(provider, identifier)`` keys with the same password).
        The ``identifier_columns`` of the keys' providers are filled from them."""
        keys = [self.provider_id(p, i, new=True) for p, i in ((provider, identifier), *more_keys)]
        if len(set(keys)) != len(keys):
            raise ValueError("the same key was given twice")
        data: object = user_data
        if user_data is None or isinstance(user_data, Mapping):  # else check_user_data refuses
            data = {**(user_data or {}), **self.identifier_values(keys)}
        values = self.check_user_data(data, partial=False)
        hashed = None if password is None else self.hasher.hash(password)
        if self._generate_user_id is not None:
            values[self.storage.user_pk.name] = self.users.check_id(
                self._generate_user_id(), "generate_user_id()"
            )
        user_id = self.storage.insert_user(values, keys, hashed, now_ms())
        user = self.get_user(user_id)
        signals.send(signals.user_created, user=user)
        return user

    def identifier_values(self, keys: Sequence[str]) -> dict[str, str]:
        """The user columns ``identifier_columns`` fills from these keys (the first key of
        a provider wins)."""
        columns = self.storage.identifier_columns
        values: dict[str, str] = {}
        for key in reversed(keys):
            provider, _, identifier = key.partition(":")
            if provider in columns:
                values[columns[provider]] = identifier
        return values

    def password_key(self, identifier: str) -> tuple[str, str]:
        """Which password provider a typed ``identifier`` names: the first of
        ``LUCIA_PASSWORD_PROVIDERS`` that has a key for it, else the first. One query
        whatever is found, so a known and an unknown identifier cost the same."""
        providers = self.settings.password_providers
        if len(providers) == 1:
            return providers[0], identifier
        candidates: dict[str, str] = {}
        for provider in providers:
            try:
                candidates[self.provider_id(provider, identifier)] = provider
            except ValueError:  # not an identifier this provider can have
                continue
        found = set(self.storage.existing_keys(list(candidates)))
        chosen = next((p for key, p in candidates.items() if key in found), providers[0])
        return chosen, identifier

    def authenticate_user(
        self,
        provider: str,
        identifier: str,
        password: str,
        *,
        client_address: str | None = None,
        device: str | None = None,
    ) -> Any:
        """The user whose password this is; unknown users cost a full hash.

        Throttled: the attempt is counted as a failure before the hash runs (so parallel
        guesses cannot outrun the budget) and given back only when the password is right;
        a hash that cannot be verified (``AUTH_OUTDATED_PASSWORD``) stays counted. With
        a valid ``device`` cookie for this account, it counts on that device's own
        budget instead of the identifier's and the address's.
        """
        key = self.provider_id(provider, identifier)
        self.hasher.normalize(password)  # a bad or oversized password costs nothing more
        trusted = self.device_nonce(key, device)
        keys = self.throttle.keys(key, client_address, trusted)
        reserved = self.throttle.reserve(keys, now_ms())  # before any hashing
        row = self.storage.user_by_key(key)
        verdict = self.hasher.verify(None if row is None else row[-1], password)
        if row is None or not verdict.ok:
            if row is not None:  # the owner sees the failed attempt (DESIGN §20)
                self.note_event("sign_in_failed", row[0])
            raise LuciaError("AUTH_INVALID_PROVIDER_ID" if row is None else "AUTH_INVALID_PASSWORD")
        self.throttle.succeeded(reserved)
        user = self._user(tuple(row[:-1]))
        if verdict.needs_rehash:
            self.storage.set_key_password(key, self.hasher.hash(password, new=False))
            signals.send(signals.password_rehashed, user=user)
        return user

    def reauthenticate(
        self,
        session: Session,
        password: str,
        *,
        client_address: str | None = None,
        device: str | None = None,
    ) -> Session:
        """Confirm the password of a session's user and make that session fresh (no new one)."""
        with_password = [key for key, has in self.storage.user_keys(session.user_id) if has]
        preferred = f"{self.settings.password_provider}:"
        with_password.sort(key=lambda key: not key.startswith(preferred))
        if not with_password:
            raise LuciaError("AUTH_INVALID_PASSWORD")
        provider, _, identifier = with_password[0].partition(":")
        try:
            self.authenticate_user(
                provider, identifier, password, client_address=client_address, device=device
            )
        except LuciaError as error:
            if error.code == "AUTH_INVALID_PROVIDER_ID":  # re-keyed meanwhile
                raise LuciaError("AUTH_INVALID_PASSWORD") from None
            raise
        self.storage.set_fresh_until(session.session_id, now_ms() + self.settings.fresh_for)
        return replace(session, fresh=True)

    def get_user(self, user_id: Any) -> Any:
        """The user with this id."""
        row = self.storage.user(self.users.check_id(user_id))
        if row is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return self._user(row)

    def get_user_by_provider_id(self, provider: str, identifier: str) -> Any:
        """The user with the key ``provider:identifier`` (any of its keys)."""
        row = self.storage.user_by_key(self.provider_id(provider, identifier))
        if row is None:
            raise LuciaError("AUTH_INVALID_PROVIDER_ID")
        return self._user(tuple(row[:-1]))

    def update_user_data(self, user_id: Any, data: Mapping[str, Any]) -> Any:
        """Change some of the app's user columns."""
        user_id = self.users.check_id(user_id)
        values = self.check_user_data(data, partial=True)
        if not values:
            return self.get_user(user_id)
        return self._user(self.storage.update_user(user_id, values))

    def update_user_password(
        self, user_id: Any, password: str | None, *, keep_session: str | None = None
    ) -> Any:
        """Set (or with None, remove) a user's password and end every session but
        ``keep_session``, in one transaction.

        The password goes to the keys that have one; a user without any gets it on its
        keys of the password provider, else on its first key.
        """
        user_id = self.users.check_id(user_id)
        hashed = None if password is None else self.hasher.hash(password)
        keys = self.storage.user_keys(user_id)
        if not keys:
            raise LuciaError("AUTH_INVALID_USER_ID")
        targets = [key for key, has in keys if has]
        if not targets:
            provider = f"{self.settings.password_provider}:"
            targets = [key for key, _ in keys if key.startswith(provider)] or [keys[0][0]]
        self.storage.set_password(user_id, targets, hashed, keep_session, "password_changed")
        return self.get_user(user_id)

    def update_user_provider_id(self, user_id: Any, provider: str, identifier: str) -> Any:
        """Re-key a user: its first key of ``provider`` (else its first key) becomes
        ``provider:identifier``, keeping its password and sessions."""
        user_id = self.users.check_id(user_id)
        new = self.provider_id(provider, identifier, new=True)
        keys = [key for key, _ in self.storage.user_keys(user_id)]
        if not keys:
            raise LuciaError("AUTH_INVALID_USER_ID")
        same = [key for key in keys if key.startswith(f"{provider}:")]
        old = (same or keys)[0]
        if old != new:
            self.storage.rename_key(user_id, old, new)
        return self.get_user(user_id)

    def add_provider_id(
        self,
        user_id: Any,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        password_hash: str | None = None,
    ) -> Any:
        """Give a user another way in: the key ``provider:identifier``, with a password or
        an existing ``password_hash`` (argon2, Werkzeug, bcrypt, Lucia scrypt: an app's
        users imported as they are, rehashed at their next sign-in)."""
        user_id = self.users.check_id(user_id)
        key = self.provider_id(provider, identifier, new=True)
        if password is not None and password_hash is not None:
            raise ValueError("give password or password_hash, not both")
        if password_hash is not None and not self.hasher.recognizes(password_hash):
            raise ValueError("password_hash is not a hash flask-lucia can verify")
        hashed = password_hash if password is None else self.hasher.hash(password)
        self.storage.add_key(user_id, key, hashed, now_ms(), "provider_linked")
        return self.get_user(user_id)

    def remove_provider_id(self, user_id: Any, provider: str, identifier: str) -> Any:
        """Take one key from a user; never its last (``AUTH_LAST_PROVIDER_ID``)."""
        user_id = self.users.check_id(user_id)
        key = self.provider_id(provider, identifier)
        self.storage.remove_key(user_id, key, "provider_unlinked")
        return self.get_user(user_id)

    def get_user_provider_ids(self, user_id: Any) -> list[str]:
        """A user's keys as ``"provider:identifier"`` strings, first first."""
        user_id = self.users.check_id(user_id)
        keys = [key for key, _ in self.storage.user_keys(user_id)]
        if not keys and self.storage.user(user_id) is None:
            raise LuciaError("AUTH_INVALID_USER_ID")
        return keys

    def delete_user(self, user_id: Any) -> None:
        """Delete a user with its keys and sessions (idempotent); ``AUTH_USER_REFERENCED``
        while the app's rows still point at it."""
        self.storage.delete_user(self.users.check_id(user_id))
