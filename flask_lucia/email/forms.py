"""Flask-WTF forms of signing in with a code sent by mail (DESIGN §23)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from flask_lucia.i18n import lazy_gettext
from flask_lucia.web.forms import RememberField


class CodeRequestForm(FlaskForm):  # type: ignore[misc]
    """The address to send a code to, and where to go once signed in."""

    email = StringField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=255)])
    next = HiddenField()


class CodeSignInForm(FlaskForm):  # type: ignore[misc]
    """The address and the code it got (typed on any browser), "remember me", and where
    to go once signed in."""

    email = StringField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=255)])
    code = StringField(
        lazy_gettext("Code from the email"), validators=[DataRequired(), Length(max=32)]
    )
    remember = RememberField(lazy_gettext("Remember me"), default=True)
    next = HiddenField()
