"""Translations (DESIGN §22): flask-lucia's own gettext domain, in the app's Flask-Babel locale.

flask-lucia never picks a language: the app's Babel (its ``locale_selector``) does. An app
without Flask-Babel, or without ``Babel`` initialised on it, gets the English source text;
``flask_babel`` is then never imported, and an app that has Babel imported it already.

Marking a string (docs/translations.rst): ``gettext("...")``, ``ngettext(one, many, n)``,
``lazy_gettext("...")`` for text fixed at import time (form labels), ``N_("...")`` for a
constant translated where it is used, and the second argument of ``LuciaError(code, "...")``
(the error translates its message). Templates call ``_lucia("...")`` and
``_lucia_plural(one, many, n)``. Placeholders are ``%(name)s``, filled by keyword.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from flask import current_app, has_app_context, has_request_context
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

#: The gettext domain of flask-lucia's catalogs (``translations/<locale>/LC_MESSAGES/``).
DOMAIN: Final = "flask_lucia"
#: Where the catalogs are, inside the package (they ship in the wheel).
TRANSLATIONS: Final = str(Path(__file__).with_name("translations"))

_domain: Any = None


def _translations() -> Any:
    """The catalog of the current locale, or ``None`` for English (no Babel on this app,
    or no locale to be had outside a request)."""
    if not has_app_context() or "babel" not in current_app.extensions:
        return None
    global _domain
    if _domain is None:
        from flask_babel import Domain  # the app has Babel, so this import is already paid

        _domain = Domain(TRANSLATIONS, domain=DOMAIN)
    try:
        return _domain.get_translations()
    except RuntimeError:  # the app's selector reads the request, and there is none (CLI)
        if has_request_context():
            raise
        return None


def _fill(text: str, source: str, variables: dict[str, Any]) -> str:
    """``text % variables``; the English ``source`` if a translation's placeholders are broken."""
    if not variables:
        return text
    try:
        return text % variables
    except (KeyError, ValueError, TypeError):
        return source % variables


def gettext(string: str, **variables: Any) -> str:
    """``string`` in the current locale, its ``%(name)s`` placeholders filled."""
    catalog = _translations()
    return _fill(string if catalog is None else catalog.gettext(string), string, variables)


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The form of ``singular``/``plural`` for ``num`` in the current locale; ``%(num)d``."""
    variables.setdefault("num", num)
    catalog = _translations()
    english = singular if num == 1 else plural
    text = english if catalog is None else catalog.ngettext(singular, plural, num)
    return _fill(text, english, variables)


def N_(string: str) -> str:
    """Mark ``string`` for extraction only; translate it where it is used (``gettext(X)``,
    or as a ``LuciaError`` message)."""
    return string


class LazyText:
    """Text translated each time it is shown: for labels and messages fixed at import time."""

    __slots__ = ("_string", "_variables")

    def __init__(self, string: str, **variables: Any) -> None:
        self._string = string
        self._variables = variables

    def __str__(self) -> str:
        return gettext(self._string, **self._variables)

    def __html__(self) -> str:
        return str(escape(str(self)))

    def __repr__(self) -> str:
        return f"lazy_gettext({self._string!r})"

    def __mod__(self, values: Any) -> str:  # WTForms fills its messages with %
        return str(str(self) % values)

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._string)


def lazy_gettext(string: str, **variables: Any) -> Any:
    """``string`` translated when shown (``str()``), not now. Typed ``Any`` because WTForms
    takes it where it expects a ``str``."""
    return LazyText(string, **variables)


def locale() -> Any:
    """The Babel ``Locale`` of this request, or ``None`` when it is English by default."""
    if _translations() is None:
        return None
    from flask_babel import get_locale

    return get_locale()


def format_ago(delta: timedelta) -> str:
    """A past moment ``delta`` ago, in the locale's words ("vor 2 Minuten")."""
    from babel.dates import format_timedelta

    return str(format_timedelta(-delta, add_direction=True, locale=locale()))


def format_moment(moment: datetime) -> str:
    """An exact date and time in the locale's way, in the app's Babel time zone."""
    from flask_babel import format_datetime

    return str(format_datetime(moment, "long"))


@pass_eval_context
def template_gettext(context: EvalContext, string: str, **variables: Any) -> str:
    """``_lucia(...)`` in templates. Without values, the plain text (escaped on output, and
    fit for ``|tojson``); with values in HTML, the translation is escaped and so is each
    value unless it is ``Markup`` (a link); in text templates (mails), plain text."""
    if not context.autoescape or not variables:
        return gettext(string, **variables)
    catalog = _translations()
    text = escape(string if catalog is None else catalog.gettext(string))
    return _fill(text, escape(string), variables)


@pass_eval_context
def template_ngettext(
    context: EvalContext, singular: str, plural: str, num: int, **variables: Any
) -> str:
    """``_lucia_plural(one, many, n)`` in templates, escaped like ``_lucia``."""
    if not context.autoescape:
        return ngettext(singular, plural, num, **variables)
    variables.setdefault("num", num)
    catalog = _translations()
    english = singular if num == 1 else plural
    text = english if catalog is None else catalog.ngettext(singular, plural, num)
    return _fill(Markup(escape(text)), escape(english), variables)


def language_tag() -> str:
    """The ``lang`` of a page or mail: the request's locale as a BCP 47 tag ("pt-BR")."""
    current = locale()
    return "en" if current is None else str(current).replace("_", "-")


#: The template globals, added by ``init_app``.
TEMPLATE_GLOBALS: Final = {
    "_lucia": template_gettext,
    "_lucia_plural": template_ngettext,
    "lucia_lang": language_tag,
}
