"""``Storage``: every statement flask-lucia runs on one app's tables, one family per module
(``users``, ``sessions``, ``throttle``, ``trust``) over ``base.StoreBase`` (tables and connections).
"""

from __future__ import annotations

from flask_lucia.core.store.sessions import SessionStatements
from flask_lucia.core.store.throttle import ThrottleStatements
from flask_lucia.core.store.trust import TrustStatements
from flask_lucia.core.store.users import UserStatements


class Storage(UserStatements, SessionStatements, ThrottleStatements, TrustStatements):
    """The tables of one app (``schema.Tables``) and every statement flask-lucia runs on them."""
