"""The activity feature plugs in (DESIGN §20): its writer in every change's transaction,
the sign-in signal, its route, its section of the devices page, and pruning by
``flask lucia cleanup`` after ``LUCIA_ACTIVITY_KEEP``."""

from __future__ import annotations

from flask import Flask

from flask_lucia import signals
from flask_lucia.activity import commands as _commands  # noqa: F401 - adds its command
from flask_lucia.activity import record
from flask_lucia.activity import views as _views  # noqa: F401 - adds its route
from flask_lucia.activity.store import EventStore
from flask_lucia.activity.views import recent_section
from flask_lucia.config import to_ms
from flask_lucia.core.auth import Auth
from flask_lucia.web.views import devices_sections


def init_app(app: Flask, auth: Auth) -> EventStore:
    """The app's ``EventStore`` (``app.extensions["lucia_activity"]``)."""
    keep = to_ms(app.config["LUCIA_ACTIVITY_KEEP"], "LUCIA_ACTIVITY_KEEP")
    if keep <= 0:
        raise ValueError("LUCIA_ACTIVITY_KEEP must be a positive duration")
    store = EventStore(auth.storage)
    app.extensions["lucia_activity"] = store
    auth.storage.event_writers.append(record.writer(store))
    auth.cleanups.append(lambda now: store.prune(now - keep))
    signals.user_signed_in.connect(record.signed_in, weak=False)  # once: same receiver
    devices_sections(app).append(recent_section)
    return store
