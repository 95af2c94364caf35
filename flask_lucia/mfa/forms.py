"""Flask-WTF forms of the second-factor pages (DESIGN §15)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, Length

from flask_lucia.i18n import lazy_gettext


class TotpSetupForm(FlaskForm):  # type: ignore[misc]
    """The first code from the authenticator app, and the secret it was made from."""

    code = StringField(
        lazy_gettext("Code from your app"), validators=[DataRequired(), Length(max=64)]
    )
    secret = HiddenField(validators=[DataRequired(), Length(max=64)])


class CodeForm(FlaskForm):  # type: ignore[misc]
    """A TOTP code or a recovery code, and where to go afterwards."""

    code = StringField(lazy_gettext("Code"), validators=[DataRequired(), Length(max=64)])
    trust_browser = BooleanField(lazy_gettext("Don't ask again on this browser"))
    next = HiddenField()
