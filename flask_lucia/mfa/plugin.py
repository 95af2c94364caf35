"""The TOTP feature plugs in (DESIGN §15): its routes and CLI command, and the second
factor it adds to the core and to the sign-in pipeline at ``init_app``."""

from __future__ import annotations

from flask import Flask

from flask_lucia.core.auth import Auth
from flask_lucia.core.pending import Pending
from flask_lucia.mfa import views
from flask_lucia.mfa.factor import SecondFactor
from flask_lucia.web.pipeline import Pipeline


def init_app(app: Flask, auth: Auth, pipeline: Pipeline, pending: Pending) -> SecondFactor:
    """The app's ``SecondFactor`` (``app.extensions["lucia_mfa"]``)."""
    second = SecondFactor(auth, pending)
    app.extensions["lucia_mfa"] = second
    auth.second_factor_checks.append(second.enabled)
    pipeline.stages.append(views.second_factor_stage)
    # An upgrade from schema 2 encrypts the TOTP secrets stored as they are.
    auth.storage.seal_totp_secret = None if second.box is None else second.box.seal
    return second
