"""One-off, after deploying ``after.py``: give every existing user a flask-lucia key, its
email with its Werkzeug hash as it is (argon2id replaces it at the user's next sign-in).

Run it once: ``python -m examples.flask_login_port.import_users sqlite:///app.db``.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

from .after import User, create_app, db, lucia


def import_users(database_url: str) -> int:
    """Add the ``email:<address>`` key of every user that has none yet; how many were added."""
    app = create_app(database_url)
    added = 0
    with app.app_context():
        db.create_all()  # flask-lucia's tables are in db.metadata: keys, sessions, ...
        for user in db.session.scalars(sa.select(User)):
            if lucia.get_user_provider_ids(user.id):
                continue
            lucia.add_provider_id(user.id, "email", user.email, password_hash=user.password_hash)
            added += 1
    return added


if __name__ == "__main__":
    print(f"added {import_users(sys.argv[1])} keys")
