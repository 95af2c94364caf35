"""The passkey feature plugs in (DESIGN §15, §19): its routes, and the factor it adds to
the core and the sign-in pipeline at ``init_app``. A passkey sign-in is a whole sign-in
(user verification: two factors); during a pending sign-in of its user it is the second
step instead."""

from __future__ import annotations

from flask import Flask

from flask_lucia.core.auth import Auth
from flask_lucia.i18n import N_
from flask_lucia.passkeys import views  # noqa: F401 - adds its routes to the blueprint
from flask_lucia.passkeys.core import Passkeys
from flask_lucia.web.extras import installed, not_offered
from flask_lucia.web.pipeline import Pipeline

_HINT = 'pip install "flask-lucia[mfa]"'
_SETTINGS = ("LUCIA_WEBAUTHN_RP_ID", "LUCIA_WEBAUTHN_RP_NAME", "LUCIA_WEBAUTHN_ORIGIN")
#: The views that need the ``webauthn`` package; the list, rename and delete do not.
_CEREMONIES = (
    "passkey_register_options",
    "passkey_register_verify",
    "passkey_sign_in_options",
    "passkey_sign_in_verify",
)


def init_app(app: Flask, auth: Auth, pipeline: Pipeline) -> Passkeys:
    """The app's ``Passkeys`` (``app.extensions["lucia_passkeys"]``)."""
    if not installed(("webauthn",)):
        asked = [key for key in _SETTINGS if app.config[key] is not None]
        if asked:
            raise RuntimeError(f"{', '.join(asked)} asks for passkeys, which need: {_HINT}")
        message = N_("Passkeys are not installed: %(install)s")
        not_offered(app, "passkeys", _CEREMONIES, message, _HINT)
    passkeys = Passkeys(auth)
    app.extensions["lucia_passkeys"] = passkeys
    auth.second_factor_removers.append(passkeys.delete_all)
    pipeline.factors.append(lambda user_id: ("passkey",) if passkeys.list(user_id) else ())
    pipeline.method_names["passkey"] = "passkey"
    return passkeys
