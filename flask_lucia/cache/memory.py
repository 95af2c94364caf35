"""``MemoryCache``: the request query's validated rows by access token digest, indexed by
user and session so that a change drops exactly what it names.

Reads take no lock (one ``dict.get``); writes do. A generation number, bumped by every
drop, guards against the one race a cache like this has: a request that read a row just
before a change committed must not keep it after the change was dropped. The request
takes the generation (``mark``) before it reads, and ``keep`` refuses a row when the
generation moved meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from flask_lucia.core.clock import now_ms
from flask_lucia.core.store.base import SessionChange

#: Rows kept at most; past it the oldest go first (an entry lives the TTL at most anyway).
CAPACITY = 100_000


class Entry(NamedTuple):
    """One kept row: until when, and whose it is."""

    row: list[Any]
    until: int
    user_id: str
    session_id: str


class MemoryCache:
    """Kept rows of one app in one process; off (nothing kept, nothing served) until
    ``turn_on``, and again after ``turn_off``."""

    def __init__(self, ttl: int, *, capacity: int = CAPACITY) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: dict[str, Entry] = {}
        self._by_user: dict[str, set[str]] = {}
        self._by_session: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._on = False
        #: Called by ``mark`` while the cache is off: (re)start whatever turns it on.
        self.when_off: Callable[[], None] | None = None
        #: Lookups answered from memory, and rows kept (for tests and benchmarks).
        self.hits = 0
        self.kept = 0

    @property
    def on(self) -> bool:
        """Whether rows are kept and served."""
        return self._on

    def __len__(self) -> int:
        return len(self._entries)

    def mark(self) -> int | None:
        """The generation before a lookup; None while off."""
        if self._on:
            return self._generation
        if self.when_off is not None:
            self.when_off()
        return None

    def get(self, digest: str, now: int) -> list[Any] | None:
        """The row kept for ``digest`` while it is within its time; else None."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.until <= now:
            with self._lock:
                self._forget(digest)
            return None
        self.hits += 1
        return entry.row

    def keep(
        self, digest: str, row: list[Any], *, user_id: str, session_id: str, mark: int, until: int
    ) -> None:
        """Keep ``row`` until ``until`` or the TTL, whichever is sooner, unless the cache
        went off or anything was dropped since ``mark``."""
        until = min(until, now_ms() + self.ttl)
        with self._lock:
            if not self._on or mark != self._generation:
                return
            self._forget(digest)
            if len(self._entries) >= self.capacity:
                self._forget(next(iter(self._entries)))
            self._entries[digest] = Entry(row, until, user_id, session_id)
            self._by_user.setdefault(user_id, set()).add(digest)
            self._by_session.setdefault(session_id, set()).add(digest)
            self.kept += 1

    def drop(self, change: SessionChange) -> None:
        """Forget the rows a change names: a session's, a user's, or (neither) all."""
        with self._lock:
            self._generation += 1
            if change.user_id is None and change.session_id is None:
                self._clear()
                return
            named: set[str] = set()
            if change.user_id is not None:
                named.update(self._by_user.get(change.user_id, ()))
            if change.session_id is not None:
                named.update(self._by_session.get(change.session_id, ()))
            for digest in named:
                self._forget(digest)

    def turn_on(self) -> None:
        """Start keeping rows, from empty (what was missed while off is unknown)."""
        with self._lock:
            self._generation += 1
            self._clear()
            self._on = True

    def turn_off(self) -> None:
        """Forget every row and keep none until ``turn_on``."""
        with self._lock:
            self._generation += 1
            self._on = False
            self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._by_user.clear()
        self._by_session.clear()

    def _forget(self, digest: str) -> None:
        """Remove one entry and its index references (the lock is held)."""
        entry = self._entries.pop(digest, None)
        if entry is None:
            return
        for index, key in ((self._by_user, entry.user_id), (self._by_session, entry.session_id)):
            digests = index.get(key)
            if digests is not None:
                digests.discard(digest)
                if not digests:
                    del index[key]
