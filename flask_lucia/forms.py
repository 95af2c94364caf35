"""Flask-WTF forms of the HTML views: sign-in, and sign-up with the app's user columns."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional


class SignInForm(FlaskForm):  # type: ignore[misc]
    """Identifier and password, plus where to go afterwards."""

    identifier = StringField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """The password again, to make a stale session fresh."""

    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class SignUpForm(SignInForm):
    """Sign-in's fields plus one per user column (see ``sign_up_form``)."""

    data_fields: tuple[str, ...] = ()


def _field(column: sa.Column[Any]) -> Field:
    """A form field for a user column: its type, length and whether it is required."""
    label = column.name.replace("_", " ").capitalize()
    required = not column.nullable and column.default is None and column.server_default is None
    validators: list[Any] = [DataRequired() if required else Optional()]
    python_type: object = None
    with contextlib.suppress(NotImplementedError):
        python_type = column.type.python_type
    if python_type is bool:
        return BooleanField(label)
    if python_type is int:
        return IntegerField(label, validators=validators)
    length = getattr(column.type, "length", None)
    if length:
        validators.append(Length(max=length))
    return StringField(label, validators=validators)


@lru_cache(maxsize=32)
def _sign_up_class(columns: tuple[sa.Column[Any], ...]) -> type[SignUpForm]:
    fields = {column.name: _field(column) for column in columns}
    attrs: dict[str, Any] = {**fields, "data_fields": tuple(fields)}
    return type("AppSignUpForm", (SignUpForm,), attrs)


def form_options() -> dict[str, Any]:
    """Flask-WTF's token when the app has a secret key; the Origin check guards the rest."""
    return {} if current_app.secret_key else {"meta": {"csrf": False}}


def sign_up_form(columns: Sequence[sa.Column[Any]]) -> SignUpForm:
    """The sign-up form for this app: identifier, password and its user columns."""
    form: SignUpForm = _sign_up_class(tuple(columns))(**form_options())
    return form


# -- the email flows (DESIGN §13) -----------------------------------------------------


class EmailForm(FlaskForm):  # type: ignore[misc]
    """An email address: where to send a reset link, or the new address of an account."""

    email = StringField("Email", validators=[DataRequired(), Length(max=255)])


class NewPasswordForm(FlaskForm):  # type: ignore[misc]
    """A new password, typed twice (the reset link's page)."""

    password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )


class ChangePasswordForm(NewPasswordForm):
    """The current password, then the new one twice."""

    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=1024)]
    )


class ButtonForm(FlaskForm):  # type: ignore[misc]
    """No fields: a button with Flask-WTF's token (resend a verification link)."""


class DeleteAccountForm(FlaskForm):  # type: ignore[misc]
    """A box to tick before the account goes."""

    confirm = BooleanField(
        "I understand that this deletes my account and cannot be undone",
        validators=[DataRequired(message="Tick the box to delete your account.")],
    )
