"""flask-lucia's tables and the schema version this release reads and writes (creating and
upgrading them: ``upgrade``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

#: The schema this release reads and writes.
SCHEMA_VERSION = 3
#: The provider whose keys are email addresses (and carry ``email_verified_at``).
EMAIL_PROVIDER = "email"


class Tables:
    """Every table of one app: the users table (built-in or the app's model's) and ours."""

    def __init__(
        self,
        metadata: sa.MetaData,
        prefix: str,
        user_columns: Sequence[sa.Column[Any]] = (),
        user_table: sa.Table | None = None,
        *,
        mapped: bool = False,
    ) -> None:
        self.metadata = metadata
        self.prefix = prefix
        self.builtin_users = user_table is None
        #: Users are instances of the app's mapped class; otherwise ``User`` values (the
        #: built-in table, or the app's ``Table``), which carry their first key.
        self.mapped = mapped
        if user_table is None:
            user_table = sa.Table(
                f"{prefix}users",
                metadata,
                sa.Column("id", sa.String(255), primary_key=True),
                *(column._copy() for column in user_columns),
                keep_existing=True,
            )
        self.users = user_table
        self.user_pk = user_primary_key(user_table)
        self.user_data_columns = [c for c in user_table.columns if c is not self.user_pk]
        self.keys = sa.Table(
            f"{prefix}keys",
            metadata,
            sa.Column("id", sa.String(512), primary_key=True),  # "provider:identifier"
            sa.Column(
                "user_id",
                self.user_pk.type,
                sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("hashed_password", sa.String(512), nullable=True),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            # When the address of an email key was proved (a link opened); None: not yet.
            sa.Column("email_verified_at", sa.BigInteger, nullable=True),
            sa.Index(f"ix_{prefix}keys_user_id_created_at", "user_id", "created_at"),
            keep_existing=True,
        )
        self.sessions = sa.Table(
            f"{prefix}sessions",
            metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column(
                "user_id",
                self.user_pk.type,
                sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            sa.Column("idle_expires_at", sa.BigInteger, nullable=False, index=True),
            sa.Column("fresh_until", sa.BigInteger, nullable=False),
            sa.Column("last_used_at", sa.BigInteger, nullable=True),
            sa.Column("user_agent", sa.String(512), nullable=True),
            sa.Column("ip_address", sa.String(64), nullable=True),
            # False: "remember me" was off, so its cookies live only as long as the browser.
            sa.Column("remember", sa.Boolean, nullable=False, server_default=sa.true()),
            # Signed in with a second factor or a passkey (DESIGN §15): assurance level 2.
            sa.Column("mfa", sa.Boolean, nullable=False, server_default=sa.false()),
            # How it was made (DESIGN §19): method names separated by spaces ("pwd otp");
            # NULL for a session made before they were recorded.
            sa.Column("amr", sa.String(64), nullable=True),
            keep_existing=True,
        )
        self.access_tokens = self._token_table(
            f"{prefix}access_tokens",
            # When the token was first used (validated); None: not yet. A replay of the
            # refresh token spent into its pair is a lost answer only while it is None.
            sa.Column("used_at", sa.BigInteger, nullable=True),
        )
        self.refresh_tokens = self._token_table(
            f"{prefix}refresh_tokens",
            sa.Column("spent_at", sa.BigInteger, nullable=True),
            # The successor pair, sealed with a pad derived from this (raw) token:
            # lets a racing tab that presents it within the grace get the same pair.
            # While the token is live: its own pair, sealed the same way, handed back
            # when a storm would rotate it faster than the grace allows.
            sa.Column("successor", sa.LargeBinary(64), nullable=True),
        )
        # Failed sign-ins per key ("id:<provider id>" or "ip:<address>"), shared by servers.
        self.throttle = sa.Table(
            f"{prefix}throttle",
            metadata,
            sa.Column("key", sa.String(600), primary_key=True),
            sa.Column("failures", sa.Integer, nullable=False),
            sa.Column("window_start", sa.BigInteger, nullable=False),
            sa.Column("last_failure", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )
        self._second_factor_tables()
        # Links sent by mail (verify an address, reset a password, move to a new address):
        # only the SHA-256 digest of the token is stored; the newest of a user's links of
        # one purpose is the only one that works. A row without a user stands in for the
        # link of a reset request to an address with no account (so both cost the same);
        # it was never mailed and nothing spends it.
        self.email_tokens = sa.Table(
            f"{prefix}email_tokens",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column(
                "user_id",
                self.user_pk.type,
                sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
                nullable=True,
            ),
            sa.Column("purpose", sa.String(16), nullable=False),
            sa.Column("email", sa.String(512), nullable=False),  # the address it was sent to
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            sa.Index(f"ix_{prefix}email_tokens_user_id_purpose", "user_id", "purpose"),
            keep_existing=True,
        )
        # What happened to an account (DESIGN §20), for its owner and its admins. No foreign
        # key: an ``account_deleted`` event outlives its user (until LUCIA_ACTIVITY_KEEP).
        self.events = sa.Table(
            f"{prefix}events",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("user_id", self.user_pk.type, nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("at", sa.BigInteger, nullable=False, index=True),
            sa.Column("device", sa.String(100), nullable=True),
            sa.Column("ip", sa.String(64), nullable=True),
            sa.Column("amr", sa.String(100), nullable=True),  # a sign-in's ways in, "pwd otp"
            sa.Index(f"ix_{prefix}events_user_id_at", "user_id", "at"),
            keep_existing=True,
        )
        # Sign-in codes sent by mail (DESIGN §23): one live code per address (the key),
        # stored as a keyed digest, with its wrong tries counted. A row without a user
        # stands in for a request for an address with no account; nothing signs in by it.
        self.email_codes = sa.Table(
            f"{prefix}email_codes",
            metadata,
            sa.Column("email", sa.String(512), primary_key=True),
            self._user_id(nullable=True),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("tries", sa.Integer, nullable=False),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )
        self.schema = sa.Table(
            f"{prefix}schema",
            metadata,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            keep_existing=True,
        )

    def _user_id(self, *, primary_key: bool = False, nullable: bool = False) -> sa.Column[Any]:
        """A ``user_id`` column pointing at the users table; its rows go with the user."""
        return sa.Column(
            "user_id",
            self.user_pk.type,
            sa.ForeignKey(self.user_pk, ondelete="CASCADE"),
            nullable=nullable,
            primary_key=primary_key,
            index=not primary_key,
        )

    def _second_factor_tables(self) -> None:
        """TOTP secrets, recovery codes, pending sign-ins, passkeys and WebAuthn challenges
        (DESIGN §15). Codes, pending sign-ins and challenges are stored as SHA-256 digests."""
        prefix, metadata = self.prefix, self.metadata
        self.totp = sa.Table(
            f"{prefix}totp",
            metadata,
            self._user_id(primary_key=True),
            # Encrypted and bound to the row (secret_box): "$1$<key id>$<base64url>".
            sa.Column("secret", sa.String(255), nullable=False),
            sa.Column("last_step", sa.BigInteger, nullable=True),  # last accepted time step
            sa.Column("created_at", sa.BigInteger, nullable=False),
            keep_existing=True,
        )
        self.recovery_codes = sa.Table(
            f"{prefix}recovery_codes",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            self._user_id(),
            keep_existing=True,
        )
        self.pending_sign_ins = sa.Table(
            f"{prefix}pending_sign_ins",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            self._user_id(),
            sa.Column("client", sa.String(64), nullable=False),  # digest of the user agent
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            # DESIGN §19: the methods proved so far (NULL: a password), whether the session
            # it becomes is remembered, and whether it waits for a factor to be set up.
            sa.Column("amr", sa.String(64), nullable=True),
            sa.Column("remember", sa.Boolean, nullable=False, server_default=sa.true()),
            sa.Column("setup", sa.Boolean, nullable=False, server_default=sa.false()),
            keep_existing=True,
        )
        # Browsers trusted to skip the second factor (DESIGN §19): a digest of the nonce of
        # the browser's device cookie, bound to one user, until ``expires_at``.
        self.trusted_browsers = sa.Table(
            f"{prefix}trusted_browsers",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            self._user_id(),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )
        self.passkeys = sa.Table(
            f"{prefix}passkeys",
            metadata,
            sa.Column("id", sa.String(32), primary_key=True),  # public id, not the credential's
            sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),  # base64url
            self._user_id(),
            sa.Column("user_handle", sa.String(128), nullable=False),  # base64url, random per user
            sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE
            sa.Column("sign_count", sa.BigInteger, nullable=False),
            sa.Column("transports", sa.String(255), nullable=False),  # comma-separated
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("last_used_at", sa.BigInteger, nullable=True),
            keep_existing=True,
        )
        self.webauthn_challenges = sa.Table(
            f"{prefix}webauthn_challenges",
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),  # of the challenge
            sa.Column("purpose", sa.String(16), nullable=False),  # "register" or "sign-in"
            # The session (registration) or the browser's challenge cookie (sign-in) it is for.
            sa.Column("binding", sa.String(64), nullable=False),
            sa.Column("user_handle", sa.String(128), nullable=True),  # registration only
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            keep_existing=True,
        )

    def _token_table(self, name: str, *extra: sa.Column[Any]) -> sa.Table:
        """A token table: SHA-256 digest as key, owning session, expiry, and ``extra``."""
        return sa.Table(
            name,
            self.metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column(
                "session_id",
                sa.String(64),
                sa.ForeignKey(self.sessions.c.id, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            *extra,
            keep_existing=True,
        )

    @property
    def second_factor_tables(self) -> list[sa.Table]:
        """The DESIGN §15 tables that hold rows of a user (deleted with it)."""
        return [
            self.totp,
            self.recovery_codes,
            self.pending_sign_ins,
            self.passkeys,
            self.trusted_browsers,
        ]

    @property
    def owned(self) -> list[sa.Table]:
        """The tables flask-lucia owns, parents first (the app's user model is not one)."""
        users = [self.users] if self.builtin_users else []
        return [
            *users,
            self.keys,
            self.sessions,
            self.access_tokens,
            self.refresh_tokens,
            self.throttle,
            self.totp,
            self.recovery_codes,
            self.pending_sign_ins,
            self.trusted_browsers,
            self.passkeys,
            self.webauthn_challenges,
            self.email_tokens,
            self.events,
            self.email_codes,
            self.schema,
        ]

    @property
    def all(self) -> list[sa.Table]:
        """Every table flask-lucia needs, parents first: the users table and its own."""
        return [self.users, *(t for t in self.owned if t is not self.users)]


def user_primary_key(table: sa.Table) -> sa.Column[Any]:
    """The single primary-key column of a users table; anything else is refused."""
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        found = "no primary key" if not columns else f"a {len(columns)}-column primary key"
        raise ValueError(f"user table {table.name!r} needs a one-column primary key, not {found}")
    return columns[0]


# -- creating and upgrading --------------------------------------------------------------
