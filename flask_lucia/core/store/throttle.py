"""The statements on the throttle's failure counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from flask_lucia.core.store.base import StoreBase

#: How often a reservation is tried again when a racing server created its counter row.
_RESERVE_TRIES = 3


class ThrottleStatements(StoreBase):
    """Failure counters per key: read, reserve, forgive."""

    def failures(self, keys: Sequence[str]) -> list[Sequence[Any]]:
        """``(key, failures, window_start, last_failure)`` of the keys that have failed."""
        throttle = self.throttle
        stmt = sa.select(
            throttle.c.key, throttle.c.failures, throttle.c.window_start, throttle.c.last_failure
        ).where(throttle.c.key.in_(list(keys)))
        with self.read() as conn:
            return list(conn.execute(stmt).all())

    def reserve(self, admits: Mapping[str, sa.ColumnElement[bool]], now: int, window: int) -> bool:
        """Count one attempt against every key whose row ``admits`` it, in one transaction;
        if any key does not, count none and return False.

        Checking a key and counting on it are one UPDATE, so racing requests cannot
        both pass on the same count (PostgreSQL re-checks the condition on the row a
        concurrent update left). Keys are taken in sorted order, so two reservations
        never wait on each other's rows. A window older than ``window`` restarts.
        """
        throttle = self.throttle
        stale = throttle.c.window_start <= now - window
        counted = {
            "failures": sa.case((stale, 1), else_=throttle.c.failures + 1),
            "window_start": sa.case((stale, now), else_=throttle.c.window_start),
            "last_failure": now,
        }
        for _ in range(_RESERVE_TRIES):
            try:
                with self.write() as conn:
                    for key in sorted(admits):
                        update = throttle.update().where(throttle.c.key == key, admits[key])
                        if conn.execute(update.values(**counted)).rowcount:
                            continue
                        found = sa.select(throttle.c.key).where(throttle.c.key == key)
                        if conn.execute(found).first() is not None:
                            raise _NotAdmitted  # rolls back what this call counted
                        conn.execute(
                            throttle.insert().values(
                                key=key, failures=1, window_start=now, last_failure=now
                            )
                        )
                return True
            except _NotAdmitted:
                return False
            except sa.exc.IntegrityError:  # another server inserted a key first: count on it
                continue
        return False

    def forgive(self, clear: Sequence[str], give_back: Sequence[str]) -> None:
        """After a success: forget the ``clear`` keys' failures, and take back the one
        attempt counted against each ``give_back`` key."""
        throttle = self.throttle
        with self.write() as conn:
            if clear:
                conn.execute(throttle.delete().where(throttle.c.key.in_(list(clear))))
            for key in give_back:
                conn.execute(
                    throttle.update()
                    .where(throttle.c.key == key, throttle.c.failures > 0)
                    .values(failures=throttle.c.failures - 1)
                )


class _NotAdmitted(Exception):
    """A throttle key refused an attempt: undo the reservation's other counts."""
