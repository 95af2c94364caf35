"""The passkey feature plugs in (DESIGN §15): its routes, and the factor it adds to the
core at ``init_app``. A passkey sign-in is a whole sign-in (it counts as MFA), so it adds
no stage to the pipeline; it cancels a pending sign-in (``core.pending``)."""

from __future__ import annotations

from flask import Flask

from flask_lucia.core.auth import Auth
from flask_lucia.passkeys import views  # noqa: F401 - adds its routes to the blueprint
from flask_lucia.passkeys.core import Passkeys


def init_app(app: Flask, auth: Auth) -> Passkeys:
    """The app's ``Passkeys`` (``app.extensions["lucia_passkeys"]``)."""
    passkeys = Passkeys(auth)
    app.extensions["lucia_passkeys"] = passkeys
    auth.second_factor_removers.append(passkeys.delete_all)
    return passkeys
