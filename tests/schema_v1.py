"""flask-lucia 0.1's tables (schema 1), copied from that release: a database to upgrade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


def v1_tables(
    metadata: sa.MetaData, prefix: str, user_columns: Sequence[sa.Column[Any]]
) -> dict[str, sa.Table]:
    """The five tables 0.1 made, by short name."""
    users = sa.Table(
        f"{prefix}users",
        metadata,
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("provider_id", sa.String(512), nullable=False, unique=True),
        sa.Column("hashed_password", sa.String(512), nullable=True),
        *(column._copy() for column in user_columns),
    )
    sessions = sa.Table(
        f"{prefix}sessions",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(255),
            sa.ForeignKey(users.c.id, ondelete="CASCADE"),
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
    )

    def token_table(name: str, *extra: sa.Column[Any]) -> sa.Table:
        return sa.Table(
            name,
            metadata,
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column(
                "session_id",
                sa.String(64),
                sa.ForeignKey(sessions.c.id, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            *extra,
        )

    access = token_table(f"{prefix}access_tokens")
    refresh = token_table(
        f"{prefix}refresh_tokens",
        sa.Column("spent_at", sa.BigInteger, nullable=True),
        sa.Column("successor", sa.LargeBinary(64), nullable=True),
    )
    throttle = sa.Table(
        f"{prefix}throttle",
        metadata,
        sa.Column("key", sa.String(600), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("last_failure", sa.BigInteger, nullable=False, index=True),
    )
    return {
        "users": users,
        "sessions": sessions,
        "access_tokens": access,
        "refresh_tokens": refresh,
        "throttle": throttle,
    }
