"""Flask-WTF forms of the HTML views: sign-in, and sign-up with the app's user columns."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final

import sqlalchemy as sa
from flask import current_app
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import BooleanField, Field, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, EmailInput

from flask_lucia.i18n import lazy_gettext


class _RememberInput(CheckboxInput):
    """The checkbox after a hidden ``false`` of the same name, so that an unticked box
    still posts a value."""

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        hidden = Markup('<input type="hidden" name="{}" value="false">').format(escape(field.name))
        return hidden + super().__call__(field, **kwargs)


class RememberField(BooleanField):
    """The "remember me" box, ticked by default. The last posted value decides; a post
    without the field at all (a form page an app made before it existed) keeps the default."""

    widget = _RememberInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = valuelist[-1] not in self.false_values

    def _value(self) -> str:
        """The box's own value, whatever was posted: a form shown again after a failed post
        would otherwise give the box the hidden input's ``false``."""
        return "y"


class _Credentials(FlaskForm):  # type: ignore[misc]
    """Identifier and password, plus where to go afterwards."""

    identifier = StringField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=255)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class SignInForm(_Credentials):
    """The credentials and "remember me" (off: the cookies end with the browser session)."""

    remember = RememberField(lazy_gettext("Remember me"), default=True)


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """The password again, to make a stale session fresh."""

    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class SignUpForm(_Credentials):
    """The credentials plus one field per user column (see ``sign_up_form``)."""

    data_fields: tuple[str, ...] = ()
    #: The identifiers of the password providers after the first (``email`` + ``username``).
    key_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    """What an app's forms follow from its config: the identifier's label, whether it is
    an email address, and the longest identifier and password."""

    label: str
    email: bool
    identifier_max: int
    password_max: int


def _shape() -> Shape:
    auth = current_app.extensions["lucia"]
    settings = auth.settings
    return Shape(
        label=settings.identifier_label,
        email=settings.password_providers == ("email",),
        identifier_max=settings.identifier_max_length,
        password_max=auth.hasher.max_length,
    )


def _password(shape: Shape) -> Any:
    validators = [DataRequired(), Length(max=shape.password_max)]
    return PasswordField(lazy_gettext("Password"), validators=validators)


def _identifier(shape: Shape) -> Any:
    """An ``email`` input for the email provider; for any other a text input that phones
    do not capitalize or correct, since those identifiers are used as typed."""
    validators = [DataRequired(), Length(max=shape.identifier_max)]
    label = _label(shape.label)
    if shape.email:
        return StringField(label, validators=validators, widget=EmailInput())
    plain = {"autocapitalize": "none", "autocorrect": "off", "spellcheck": "false"}
    return StringField(label, validators=validators, render_kw=plain)


#: The identifier labels flask-lucia picks itself (``LUCIA_IDENTIFIER_LABEL`` unset), which
#: its catalogs translate; an app's own label is shown as the app gave it.
_DEFAULT_LABELS: Final = {
    "Email": lazy_gettext("Email"),
    "Username": lazy_gettext("Username"),
    "Email or username": lazy_gettext("Email or username"),
}


def _label(word: str) -> Any:
    """A label flask-lucia chose, translated; an app's own words as they are."""
    return _DEFAULT_LABELS.get(word, word)


@lru_cache(maxsize=32)
def _shaped(base: type[Any], shape: Shape) -> type[Any]:
    """``base`` with its identifier and password fields made for ``shape``."""
    fields: dict[str, Any] = {"password": _password(shape)}
    if issubclass(base, _Credentials):
        fields["identifier"] = _identifier(shape)
    return type(base.__name__, (base,), fields)


def sign_in_form() -> SignInForm:
    """The sign-in form for this app (labels and limits from its config)."""
    form: SignInForm = _shaped(SignInForm, _shape())(**form_options())
    return form


def confirm_form() -> ConfirmForm:
    """The password confirmation form for this app."""
    form: ConfirmForm = _shaped(ConfirmForm, _shape())(**form_options())
    return form


def _field(column: sa.Column[Any]) -> Field:
    """A form field for a user column: its type, length and whether it is required; its
    label is the column's ``info["label"]`` (a ``lazy_gettext`` is translated when the
    page renders), else made from its name."""
    label = column.info.get("label") or column.name.replace("_", " ").capitalize()
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
def _sign_up_class(
    columns: tuple[sa.Column[Any], ...], shape: Shape, providers: tuple[str, ...] = ()
) -> type[SignUpForm]:
    fields = {column.name: _field(column) for column in columns if column.name not in providers}
    plain = {"autocapitalize": "none", "autocorrect": "off", "spellcheck": "false"}
    keys = {
        name: StringField(
            _label(name.replace("_", " ").capitalize()),
            validators=[DataRequired(), Length(max=shape.identifier_max)],
            render_kw=plain,
        )
        for name in providers[1:]
    }
    if len(providers) > 1:  # the identifier field is the first provider's alone
        first = providers[0].replace("_", " ").capitalize()
        keys["identifier"] = _identifier(replace(shape, label=first, email=first == "Email"))
    attrs: dict[str, Any] = {
        **fields,
        **keys,
        "data_fields": tuple(fields),
        "key_fields": tuple(providers[1:]),
    }
    return type("AppSignUpForm", (_shaped(SignUpForm, shape),), attrs)


def form_options() -> dict[str, Any]:
    """Flask-WTF's token when the app has a secret key; the Origin check guards the rest."""
    return {} if current_app.secret_key else {"meta": {"csrf": False}}


def sign_up_form(columns: Sequence[sa.Column[Any]], providers: Sequence[str] = ()) -> SignUpForm:
    """The sign-up form for this app: identifier, password and its user columns; with
    several password ``providers``, the identifier is the first's and each other has a
    field of its own."""
    shaped = _sign_up_class(tuple(columns), _shape(), tuple(providers))  # all of them
    form: SignUpForm = shaped(**form_options())
    return form


# -- the email flows (DESIGN §13) -----------------------------------------------------


class EmailForm(FlaskForm):  # type: ignore[misc]
    """An email address: where to send a reset link, or the new address of an account."""

    email = StringField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=255)])


class NewPasswordForm(FlaskForm):  # type: ignore[misc]
    """A new password, typed twice (the reset link's page)."""

    password = PasswordField(
        lazy_gettext("New password"), validators=[DataRequired(), Length(max=1024)]
    )
    confirm = PasswordField(
        lazy_gettext("New password again"),
        validators=[
            DataRequired(),
            EqualTo("password", message=lazy_gettext("The passwords do not match.")),
        ],
    )
    #: Shown only to an account with a second factor (DESIGN §15).
    code = StringField(
        lazy_gettext("Code from your authenticator app, or a recovery code"),
        validators=[Optional(), Length(max=64)],
    )


class ChangePasswordForm(NewPasswordForm):
    """The current password, then the new one twice."""

    current_password = PasswordField(
        lazy_gettext("Current password"), validators=[DataRequired(), Length(max=1024)]
    )


class ButtonForm(FlaskForm):  # type: ignore[misc]
    """No fields: a button with Flask-WTF's token (resend a verification link)."""


class DeleteAccountForm(FlaskForm):  # type: ignore[misc]
    """A box to tick before the account goes."""

    confirm = BooleanField(
        lazy_gettext("I understand that this deletes my account and cannot be undone"),
        validators=[DataRequired(message=lazy_gettext("Tick the box to delete your account."))],
    )


class ActionForm(FlaskForm):  # type: ignore[misc]
    """A button that changes something (turn off, new codes, delete): only the CSRF token."""
