"""Refresh token rotation (DESIGN §4, §18): spend, follow within the grace, recover a lost
answer, revoke on reuse.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from flask_lucia import signals
from flask_lucia.core.base import _EXPIRES, _IDLE, _LAST_USED, _N_SESSION, _USER, AuthBase, Found
from flask_lucia.core.clock import now_ms
from flask_lucia.core.store.sessions import FAMILY_SPENT_AT, RefreshRow
from flask_lucia.core.tokens import (
    digest,
    family_digest,
    is_well_formed,
    new_refresh_token,
    new_token,
    seal,
    unseal,
)
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, Tokens, from_ms

#: Rotations a session makes within one grace period, at most. Past that, presenting the
#: live refresh token hands back the live pair (or, when its access token is past half its
#: lifetime, the same refresh token with a new access token) instead of rotating it. So a
#: session keeps every token spent within the grace (a race, however many rotations
#: followed it: tabs after a restart) and still has at most SPENT_KEPT + 2 refresh rows:
#: those, the live token and the family row; the latest spent token (a lost answer) is
#: kept past the grace too, and then it is the only spent one within it.
SPENT_KEPT = 3


class Reused(NamedTuple):
    """A refresh that found a stolen token and revoked its session."""

    session_id: str
    user_id: Any


class Pair(NamedTuple):
    """A refresh that ends with a live pair: the session and user row, tokens, expiries."""

    row: Sequence[Any]
    access: str
    access_exp: int
    refresh: str
    refresh_exp: int


class Step(enum.Enum):
    """What presenting a refresh token does, judged from its session's refresh rows."""

    ROTATE = "rotate"  # the live token: spend it into a new pair
    FOLLOW = "follow"  # spent within the grace: the pair its spending made (racing tabs)
    RECOVER = "recover"  # spent after the grace, successor never used: a lost answer
    REUSED = "reused"  # any other token of the session: stolen, the session is revoked
    EXPIRED = "expired"  # past its own expiry: refused, nothing else happens


class RefreshApi(AuthBase):
    """Refresh tokens."""

    def validate_refresh_token(self, refresh_token: str) -> Any:
        """The user id of a refresh token that would refresh (no rotation, no revocation)."""
        if is_well_formed(refresh_token):
            now = now_ms()
            with self.storage.read() as conn:
                found = self.storage.refresh_state(
                    conn, digest(refresh_token), family_digest(refresh_token), lock=False
                )
                if found is not None and _alive(found[0], now):
                    row, rows = found
                    used = partial(self._pair_used, conn)
                    step = _judge(
                        refresh_token, rows, row[_LAST_USED], now, self.settings.grace, used
                    )
                    if step in (Step.ROTATE, Step.FOLLOW, Step.RECOVER):
                        return row[_USER]
        raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")

    def refresh(self, refresh_token: str) -> Found:
        """Rotate a refresh token: the old one is spent, the old access token dies.

        A spent token presented again within the grace opens the pair its first
        use made (one live chain however many tabs race). After the grace it is
        taken as stolen and the whole session is revoked, unless the pair it was
        spent into was never used: then the answer was lost on its way, and the
        token is spent again into a new pair while that unused pair is retired.
        """
        if not is_well_formed(refresh_token):
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")
        now = now_ms()
        outcome = self.storage.transaction(
            partial(self._spend, token=refresh_token, now=now), immediate=True
        )
        if isinstance(outcome, Reused):
            signals.send(
                signals.refresh_token_reused, session_id=outcome.session_id, user_id=outcome.user_id
            )
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN", "refresh token reused; session revoked")
        found = self._rotated(*outcome, now=now)  # built outside the transaction: short locks
        signals.send(signals.session_refreshed, session=found.session)
        return found

    def _spend(self, conn: Connection, token: str, now: int) -> Pair | Reused:
        """``refresh`` in one transaction that locks the session row first, so nothing else
        rotates or ends the session meanwhile: a new pair, the live pair, or a revocation."""
        storage, s = self.storage, self.settings
        family = family_digest(token)
        found = storage.refresh_state(conn, digest(token), family, lock=True)
        if found is None or not _alive(found[0], now):
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")  # unknown, or its session is over
        row, rows = found
        session_id = str(row[0])
        used = partial(self._pair_used, conn)
        for _ in range(len(rows) + 1):  # each spent row opens the next pair, once
            old = digest(token)
            step = _judge(token, rows, row[_LAST_USED], now, s.grace, used)
            if step is not Step.FOLLOW:
                break
            successor = rows[old].successor
            assert successor is not None
            access, token = unseal(token, successor)
            live = storage.access_token(conn, digest(access))
            if live is not None and live[0] > now:  # the live pair
                return Pair(row, access, live[0], token, row[_IDLE])
            # that pair was rotated too (or its access token expired): go on from it
        else:
            step = Step.REUSED  # a loop of seals: never made by a rotation
        if step is Step.EXPIRED:
            raise LuciaError("AUTH_INVALID_REFRESH_TOKEN")
        if step is Step.REUSED:
            storage.delete_session(conn, session_id)
            storage.record_event(conn, "refresh_reuse", row[_USER])
            return Reused(session_id, row[_USER])
        if step is Step.ROTATE and _spent_within(rows, now, s.grace) >= SPENT_KEPT:
            return self._hand_back(conn, row, token, rows[old], now)
        # ROTATE, or RECOVER: spend the token (again) into a new pair. A recovery retires
        # the unused successor, so whoever presents it later is caught as a reuse.
        access, refresh = new_token(), new_refresh_token(token)
        access_exp = min(now + s.access_ttl, row[_EXPIRES])
        refresh_exp = min(now + s.refresh_ttl, row[_EXPIRES])
        storage.spend_refresh(conn, old, now, seal(token, access, refresh))
        storage.delete_refresh(conn, _unneeded(old, rows, now, s.grace, step))
        if family not in rows:  # a session from before token families
            storage.insert_family(conn, session_id, family, row[_EXPIRES])
        storage.issue_tokens(
            conn,
            session_id,
            (digest(access), access_exp),
            (digest(refresh), refresh_exp),
            own=seal(refresh, access, refresh),
        )
        return Pair(row, access, access_exp, refresh, refresh_exp)

    def _hand_back(
        self, conn: Connection, row: Sequence[Any], token: str, mine: RefreshRow, now: int
    ) -> Pair:
        """The live pair for its own refresh token ``token`` when the session rotated
        SPENT_KEPT times within the grace already: rotating it again would leave a token
        spent within the grace that no row leads from. Its access token, opened from the
        token's own seal, while at least half its lifetime is left; otherwise (or for a
        token issued before own seals) a new access token beside the same refresh token."""
        storage, s = self.storage, self.settings
        if mine.successor is not None:
            access, _ = unseal(token, mine.successor)
            live = storage.access_token(conn, digest(access))
            if live is not None and (
                live[0] - now >= s.access_ttl // 2 or live[0] >= row[_EXPIRES] > now
            ):
                return Pair(row, access, live[0], token, mine.expires_at)
        access = new_token()
        access_exp = min(now + s.access_ttl, row[_EXPIRES])
        storage.reissue_access(
            conn, str(row[0]), (digest(access), access_exp), mine.digest, seal(token, access, token)
        )
        return Pair(row, access, access_exp, token, mine.expires_at)

    def _pair_used(self, conn: Connection, access_token: str) -> bool:
        """Whether the access token of a pair was ever used (validated)."""
        found = self.storage.access_token(conn, digest(access_token))
        return found is not None and found[1] is not None

    def _rotated(
        self,
        row: Sequence[Any],
        access: str,
        access_exp: int,
        refresh: str,
        refresh_exp: int,
        *,
        now: int,
    ) -> Found:
        """The ``Found`` of a refresh: session and user from ``row``, the pair as cookies."""
        session = replace(self._session(row, 0, access_exp, now), idle_expires=from_ms(refresh_exp))
        user = self._user(row, _N_SESSION, attach=False)
        tokens = self._tokens(access, access_exp, refresh, refresh_exp, session.remember)
        return Found(user, session, tokens)

    def refresh_session(self, refresh_token: str) -> tuple[Session, Tokens]:
        """Rotate a refresh token into a new pair in the same session."""
        found = self.refresh(refresh_token)
        assert found.tokens is not None
        return found.session, found.tokens


def _alive(row: Sequence[Any], now: int) -> bool:
    """True while a session (its fields first in ``row``) is within both its lifetimes."""
    return bool(row[_EXPIRES] > now and row[_IDLE] > now)


def _judge(
    token: str,
    rows: Mapping[str, RefreshRow],
    last_used: int | None,
    now: int,
    grace: int,
    used: Callable[[str], bool],
) -> Step:
    """What presenting ``token`` does, given every refresh row of its session.

    A token of the session's family with no row was rotated out long ago: reuse. A spent
    token after the grace is a lost answer only while the pair it was spent into is the
    live one (its sealed successor opens to the unspent refresh token) and that pair was
    never used: ``used`` says whether its access token was ever validated (its first use
    is always recorded), and the session's ``last_used_at`` (which that first use writes
    too) is not later than the spending, for a pair whose access token was replaced.
    """
    mine = rows.get(digest(token))
    if mine is None:
        return Step.REUSED
    if mine.spent_at is None:
        return Step.ROTATE if mine.expires_at > now else Step.EXPIRED
    if mine.successor is None:  # wiped: not the predecessor of the live pair
        return Step.REUSED
    if now - mine.spent_at <= grace:
        return Step.FOLLOW
    access, refresh = unseal(token, mine.successor)
    successor = rows.get(digest(refresh))
    if successor is None or successor.spent_at is not None:
        return Step.REUSED  # the pair it was spent into is not the live one
    if last_used is not None and last_used > mine.spent_at:
        return Step.REUSED
    return Step.REUSED if used(access) else Step.RECOVER


def _spent_within(rows: Mapping[str, RefreshRow], now: int, grace: int) -> int:
    """How many of a session's tokens were spent within the grace (its recent rotations)."""
    return sum(
        1
        for r in rows.values()
        if r.spent_at is not None and r.spent_at != FAMILY_SPENT_AT and now - r.spent_at <= grace
    )


def _unneeded(
    old: str, rows: Mapping[str, RefreshRow], now: int, grace: int, step: Step
) -> list[str]:
    """Refresh rows that spending ``old`` now leaves useless: spent rows past the grace
    (their sealed successors with them), all but the newest ``SPENT_KEPT - 1`` within it
    (``old`` becomes the latest), and on a recovery the unused live successor. The family
    row stays."""
    spent = sorted(
        (
            (r.spent_at, r.digest)
            for r in rows.values()
            if r.digest != old and r.spent_at is not None and r.spent_at != FAMILY_SPENT_AT
        ),
        reverse=True,
    )
    recent = [d for at, d in spent if now - at <= grace][: SPENT_KEPT - 1]
    drop = [d for _, d in spent if d not in recent]
    if step is Step.RECOVER:
        drop += [r.digest for r in rows.values() if r.spent_at is None]
    return drop
