"""The passkey feature plugs in (DESIGN §15, §19): its routes, and the factor it adds to
the core and the sign-in pipeline at ``init_app``. A passkey sign-in is a whole sign-in
(user verification: two factors); during a pending sign-in of its user it is the second
step instead."""

from __future__ import annotations

from flask import Flask

from flask_lucia.core.auth import Auth
from flask_lucia.passkeys import views  # noqa: F401 - adds its routes to the blueprint
from flask_lucia.passkeys.core import Passkeys
from flask_lucia.web.pipeline import Pipeline


def init_app(app: Flask, auth: Auth, pipeline: Pipeline) -> Passkeys:
    """The app's ``Passkeys`` (``app.extensions["lucia_passkeys"]``)."""
    passkeys = Passkeys(auth)
    app.extensions["lucia_passkeys"] = passkeys
    auth.second_factor_removers.append(passkeys.delete_all)
    pipeline.factors.append(lambda user_id: ("passkey",) if passkeys.list(user_id) else ())
    pipeline.method_names["passkey"] = "passkey"
    return passkeys
