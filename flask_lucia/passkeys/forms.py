"""Flask-WTF forms of the passkey pages (DESIGN §15)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from flask_lucia.i18n import lazy_gettext


class PasskeyNameForm(FlaskForm):  # type: ignore[misc]
    """A passkey's new name."""

    name = StringField(lazy_gettext("Name"), validators=[DataRequired(), Length(max=100)])
