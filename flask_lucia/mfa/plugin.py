"""The TOTP feature plugs in (DESIGN §15): its routes and CLI command, and the second
factor it adds to the core and to the sign-in pipeline at ``init_app``."""

from __future__ import annotations

from flask import Flask

from flask_lucia.core.auth import Auth
from flask_lucia.core.pending import Pending
from flask_lucia.i18n import N_
from flask_lucia.mfa import commands as _commands  # noqa: F401 - adds its command
from flask_lucia.mfa import setup as _setup  # noqa: F401 - adds its routes
from flask_lucia.mfa import views as _views  # noqa: F401 - adds its routes
from flask_lucia.mfa.factor import SecondFactor
from flask_lucia.web.extras import installed, not_offered
from flask_lucia.web.pipeline import Pipeline

#: What ``pip install "flask-lucia[mfa]"`` brings that TOTP uses, and the views needing it.
EXTRA_MODULES = ("pyotp", "segno", "cryptography")
HINT = 'pip install "flask-lucia[mfa]"'
ENDPOINTS = (
    "two_factor",
    "two_factor_verify",
    "two_factor_disable",
    "two_factor_recovery_codes",
)


def init_app(app: Flask, auth: Auth, pipeline: Pipeline, pending: Pending) -> SecondFactor:
    """The app's ``SecondFactor`` (``app.extensions["lucia_mfa"]``)."""
    if not installed(EXTRA_MODULES):
        if app.config["LUCIA_TOTP_ISSUER"] is not None:
            raise RuntimeError(
                f"LUCIA_TOTP_ISSUER asks for two-factor sign-in, which needs: {HINT}"
            )
        message = N_("Two-factor sign-in is not installed: %(install)s")
        not_offered(app, "two_factor", ENDPOINTS, message, HINT)
    second = SecondFactor(auth, pending)
    app.extensions["lucia_mfa"] = second
    auth.second_factor_checks.append(second.enabled)
    pipeline.factors.append(lambda user_id: ("otp", "recovery") if second.enabled(user_id) else ())
    pipeline.verify_code = second.verify_method
    pipeline.method_names.update(otp="authenticator app", recovery="recovery code")
    # An upgrade from schema 2 encrypts the TOTP secrets stored as they are.
    auth.storage.seal_totp_secret = None if second.box is None else second.box.seal
    return second
