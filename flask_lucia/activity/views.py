"""``GET /auth/activity`` (the signed-in user's events as JSON, newest first, paged) and the
"Recent activity" section of the devices page."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from flask_lucia import messages
from flask_lucia.activity.store import Event, EventStore
from flask_lucia.activity.words import sentence
from flask_lucia.errors import LuciaError
from flask_lucia.types import Session, from_ms
from flask_lucia.web.base import error_response
from flask_lucia.web.blueprint import bp
from flask_lucia.web.proxies import request_state

#: Events per page of ``/auth/activity``: by default, and at most (``?limit=``).
PAGE, MOST = 20, 100
#: Events the devices page shows.
ON_THE_PAGE = 10


def _store() -> EventStore:
    store: EventStore = current_app.extensions["lucia_activity"]
    return store


def as_json(event: Event) -> dict[str, Any]:
    """One event as ``/auth/activity`` answers it."""
    return {
        "kind": event.kind,
        "at": event.at,
        "device": event.device,
        "ip": event.ip,
        "amr": None if event.amr is None else list(event.amr),
    }


def _number(name: str, lowest: int, highest: int) -> int | None:
    """The query argument ``name`` as a whole number within bounds; None when absent."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not lowest <= int(raw) <= highest:
        raise ValueError(f"'{name}' must be a whole number from {lowest} to {highest}")
    return int(raw)


@bp.get("/activity", endpoint="activity")
def activity() -> ResponseReturnValue:
    """The signed-in user's events, newest first: ``?limit=`` (1-100, default 20) of them,
    older than ``?before=`` (unix ms; a page's ``next``); ``next`` is null on the last page."""
    session: Session | None = request_state.get("_lucia_session")
    if session is None:
        return error_response(LuciaError("AUTH_NOT_AUTHENTICATED"))
    try:
        limit = _number("limit", 1, MOST) or PAGE
        before = _number("before", 1, 2**62)
    except ValueError as error:
        return error_response(LuciaError("AUTH_INVALID_REQUEST", str(error)), 400)
    found = _store().recent(session.user_id, limit=limit + 1, before=before)
    page, more = found[:limit], len(found) > limit
    if more and page[-1].at == found[limit].at and page[0].at != page[-1].at:
        # ``before`` is a time: keep events of one millisecond on one page, not split
        page = [event for event in page if event.at != page[-1].at]
    return jsonify(
        {"events": [as_json(event) for event in page], "next": page[-1].at if more else None}
    )


def recent_section(session: Session) -> Markup:
    """The devices page's "Recent activity": the newest events in words."""
    found = _store().recent(session.user_id, limit=ON_THE_PAGE)
    return Markup(
        render_template(
            "lucia/activity/recent.html",
            events=[(sentence(event), event, from_ms(event.at)) for event in found],
            ago=messages.ago,
            exact_time=messages.exact_time,
        )
    )
