"""Recording events with the request that caused them: the device name and client address
come from the request (none from the CLI), the time from the core's clock.

Changes are written by ``writer`` inside their own transaction (the core calls it through
``Storage.event_writers``). A sign-in changes nothing an event could ride on, so it is
queued on the request and written once the response is ready: at most one INSERT per
sign-in (with its ``new_device`` when the browser is new), and a failure is logged, never
raised (DESIGN §20).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, after_this_request, current_app, has_request_context, request
from sqlalchemy.engine import Connection
from werkzeug.wrappers import Response

from flask_lucia.activity.store import Event, EventStore
from flask_lucia.core.clock import now_ms
from flask_lucia.core.store.base import EventWriter
from flask_lucia.web.agents import device_name
from flask_lucia.web.proxies import request_state

logger = logging.getLogger("flask_lucia")


def where() -> tuple[str | None, str | None]:
    """This request's device name and client address; ``(None, None)`` outside one."""
    if not has_request_context():
        return None, None
    return device_name(request.user_agent.string), request.remote_addr


def writer(store: EventStore) -> EventWriter:
    """The function the core calls in a change's transaction: ``(conn, kind, user_id)``."""

    def write(conn: Connection, kind: str, user_id: Any) -> None:
        device, ip = where()
        store.write(conn, Event(kind, user_id, now_ms(), device, ip, None))

    return write


def way_in(session: Any) -> tuple[str, ...] | None:
    """The session's ``amr`` (every built-in way in records it, DESIGN §19); None for a
    session an app made without saying how."""
    return tuple(session.amr) or None


def signed_in(sender: Flask, *, session: Any, **_: Any) -> None:
    """``user_signed_in``: queue the sign-in's event on the request (written after it)."""
    if not has_request_context() or "lucia_activity" not in sender.extensions:
        return
    queued: list[tuple[Any, tuple[str, ...] | None]] | None = request_state.get("_lucia_activity")
    if queued is None:  # the first sign-in of this request: written after it, and only then
        queued = request_state._lucia_activity = []
        after_this_request(flush)
    queued.append((session.user_id, way_in(session)))


def flush(response: Response) -> Response:
    """After a request that signed someone in (``after_this_request``, so other requests
    pay nothing): write the sign-ins it made (and ``new_device`` for a
    browser never seen on the account) in one INSERT; a failure is only logged."""
    queued = request_state.pop("_lucia_activity", None)
    new_device = request_state.pop("_lucia_new_device", None)
    if not queued:
        return response
    device, ip = where()
    now = now_ms()
    found = [Event("sign_in", user_id, now, device, ip, amr) for user_id, amr in queued]
    if new_device is not None:
        found.append(Event("new_device", new_device, now, device, ip, None))
    store: EventStore = current_app.extensions["lucia_activity"]
    try:
        store.write_many(found)
    except Exception:  # the sign-in happened; its record must not undo it
        logger.exception("flask-lucia could not record a sign-in event")
    return response
