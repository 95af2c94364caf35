"""Translations (DESIGN §22): pages, JSON messages and mails in the app's Flask-Babel locale.

The app's own locale selector decides the language; without Flask-Babel on the app (or
installed at all) everything is English. The catalogs are checked against the sources:
a message missing from one, stale, fuzzy or untranslated fails here, and so does a
compiled ``.mo`` that is older than its ``.po``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request

from flask_lucia import LuciaError, messages
from flask_lucia.i18n import DOMAIN, TRANSLATIONS
from flask_lucia.web.agents import device_name

from .conftest import PASSWORD, AppFactory
from .mailserver import MailServer, flows_app, text_of
from .test_reset import client_of

flask_babel = pytest.importorskip("flask_babel")
extract = pytest.importorskip("babel.messages.extract")

ROOT = Path(__file__).parent.parent
ANN = "ann@example.com"
CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

#: What each shipped locale says: the sign-in button, the wrong-password answer and the
#: subject of the reset mail (written here, so a broken catalog cannot pass unnoticed).
SAID = {
    "de": ("Anmelden", "E-Mail-Adresse oder Passwort ist falsch.", "Passwort zurücksetzen"),
    "es": (
        "Iniciar sesión",
        "Correo electrónico o contraseña incorrectos.",
        "Restablece tu contraseña",
    ),
    "fr": (
        "Se connecter",
        "Adresse e-mail ou mot de passe incorrect.",
        "Réinitialisez votre mot de passe",
    ),
    "pt_BR": ("Entrar", "E-mail ou senha incorretos.", "Redefina sua senha"),
}
ENGLISH = ("Sign in", "Wrong email or password.", "Reset your password")
LOCALES = sorted(SAID)


def babel_app(make_app: AppFactory, smtp: MailServer, locale: str | None) -> Flask:
    """A suite app that mails through ``smtp``, with Flask-Babel whose selector answers
    ``locale`` (``None``: no Babel at all); ann has an account."""
    app = flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off")
    if locale is not None:
        flask_babel.Babel(app, locale_selector=lambda: locale)
    with app.app_context():
        app.lucia.create_user("email", ANN, password=PASSWORD)  # type: ignore[attr-defined]
    return app


def said_by(app: Flask, smtp: MailServer) -> tuple[str, str, str]:
    """The sign-in page (its button), a wrong password's JSON message and the reset mail's
    subject, as ``app`` says them; the mail body is checked to be in the same language."""
    client = client_of(app)
    page = client.get("/auth/sign-in").text
    wrong = client.post("/auth/sign-in", json={"identifier": ANN, "password": "nope nope"})
    assert wrong.status_code == 400 and wrong.json is not None
    assert wrong.json["error"] == "AUTH_INVALID_PASSWORD"  # codes stay English
    client.post("/auth/reset-password", json={"email": ANN})
    [mail] = smtp.to(ANN)
    button = page.split('<button type="submit">')[1].split("</button>")[0]
    return button, wrong.json["message"], str(mail["Subject"])


@pytest.mark.parametrize("locale", LOCALES)
def test_the_sign_in_page_a_wrong_password_and_the_reset_mail_speak_the_apps_locale(
    make_app: AppFactory, smtp: MailServer, locale: str
) -> None:
    app = babel_app(make_app, smtp, locale)
    assert said_by(app, smtp) == SAID[locale]


@pytest.mark.parametrize("locale", LOCALES)
def test_the_reset_mail_body_is_in_the_locale_too(
    make_app: AppFactory, smtp: MailServer, locale: str
) -> None:
    app = babel_app(make_app, smtp, locale)
    client_of(app).post("/auth/reset-password", json={"email": ANN})
    [mail] = smtp.to(ANN)
    body = text_of(mail)
    hello = {"de": "Guten Tag,", "es": "Hola:", "fr": "Bonjour,", "pt_BR": "Olá,"}[locale]
    assert body.lstrip().startswith(hello) and "Someone (we hope you)" not in body
    assert "/auth/reset-password/" in body  # the link itself is the same in every language


@pytest.mark.parametrize("locale", LOCALES)
def test_the_html_page_names_its_language(
    make_app: AppFactory, smtp: MailServer, locale: str
) -> None:
    app = babel_app(make_app, smtp, locale)
    page = client_of(app).get("/auth/sign-in").text
    assert f'<html lang="{locale.replace("_", "-")}">' in page


def test_without_babel_on_the_app_everything_stays_english(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = babel_app(make_app, smtp, None)
    assert said_by(app, smtp) == ENGLISH
    assert '<html lang="en">' in client_of(app).get("/auth/sign-in").text


def test_flask_lucia_never_picks_a_language_from_accept_language(
    make_app: AppFactory, smtp: MailServer
) -> None:
    """Babel on the app without a selector: its default locale (English), whatever the
    browser asks for."""
    app = flows_app(make_app, smtp)
    flask_babel.Babel(app)
    page = app.test_client().get("/auth/sign-in", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<button type="submit">Sign in</button>' in page.text


def test_a_locale_the_app_selects_per_request_is_followed(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp)
    flask_babel.Babel(app, locale_selector=lambda: request.args.get("lang"))
    client = app.test_client()
    assert "Anmelden" in client.get("/auth/sign-in?lang=de").text
    assert "Se connecter" in client.get("/auth/sign-in?lang=fr").text
    assert '<button type="submit">Sign in</button>' in client.get("/auth/sign-in").text


def test_a_regional_locale_falls_back_to_its_language(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = babel_app(make_app, smtp, "de_AT")
    assert "Anmelden" in client_of(app).get("/auth/sign-in").text


def test_relative_times_and_device_names_follow_the_locale(make_app: AppFactory) -> None:
    app = make_app()
    flask_babel.Babel(app, locale_selector=lambda: "de")
    now = datetime(2024, 6, 1, 14, 3, 9, tzinfo=timezone.utc)
    with app.test_request_context():
        assert messages.ago(now - timedelta(minutes=3), now) == "vor 3 Minuten"
        assert messages.ago(now - timedelta(seconds=5), now) == "gerade eben"
        assert messages.exact_time(now) == "1. Juni 2024, 14:03:09 UTC"
        assert device_name(CHROME_ON_LINUX) == "Chrome unter Linux"
        assert device_name("") == "Unbekanntes Gerät"


def test_relative_times_and_device_names_stay_english_without_babel(make_app: AppFactory) -> None:
    app = make_app()
    now = datetime(2024, 6, 1, 14, 3, 9, tzinfo=timezone.utc)
    with app.test_request_context():
        assert messages.ago(now - timedelta(minutes=3), now) == "3 minutes ago"
        assert messages.exact_time(now) == "2024-06-01 14:03:09 UTC"
        assert device_name(CHROME_ON_LINUX) == "Chrome on Linux"


def test_a_wait_is_counted_in_the_locales_plural(make_app: AppFactory) -> None:
    app = make_app()
    flask_babel.Babel(app, locale_selector=lambda: "fr")
    with app.test_request_context():
        assert messages.wait_text(60) == "60 secondes"
        assert messages.wait_text(240) == "4 minutes"
        assert messages.wait_text(1) == "1 seconde"


def test_a_selector_that_needs_a_request_leaves_the_cli_in_english(make_app: AppFactory) -> None:
    """Outside a request (the CLI), a selector that reads the request cannot answer: the
    errors are English rather than a crash."""
    app = make_app()
    flask_babel.Babel(app, locale_selector=lambda: request.args.get("lang"))
    with app.app_context():
        with pytest.raises(LuciaError) as raised:
            app.lucia.authenticate_user("email", "nobody@example.com", "x" * 12)  # type: ignore[attr-defined]
        assert raised.value.message == "No user has this provider id."


def test_a_translation_with_broken_placeholders_falls_back_to_english(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_lucia import i18n

    class Broken:
        def gettext(self, string: str) -> str:
            return "%(nope)s"

    app = make_app()
    flask_babel.Babel(app, locale_selector=lambda: "de")
    monkeypatch.setattr(i18n, "_translations", lambda: Broken())
    with app.test_request_context():
        assert i18n.gettext("Device: %(device)s", device="X") == "Device: X"


# -- the catalogs ------------------------------------------------------------------------


def extracted() -> dict[Any, Any]:
    """Every message the sources mark, extracted with babel.cfg as ``pybabel extract`` does."""
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[Any, Any] = {}
    package = ROOT / "flask_lucia"
    for _file, _line, message, _comments, _context in extract.extract_from_dir(
        str(package), method_map, options_map
    ):
        found[message] = message
    return found


def catalog(locale: str) -> Any:
    from babel.messages.pofile import read_po

    path = Path(TRANSLATIONS) / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        return read_po(po, locale=locale)


def test_each_locale_ships_a_catalog() -> None:
    shipped = sorted(p.name for p in Path(TRANSLATIONS).iterdir() if p.is_dir())
    assert shipped == LOCALES


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalog_has_every_message_of_the_sources_and_no_stale_one(locale: str) -> None:
    wanted = {m if isinstance(m, str) else m[0] for m in extracted()}
    have = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(locale) if m.id}
    assert sorted(wanted - have) == [], "missing: run the update in docs/translations.rst"
    assert sorted(have - wanted) == [], "stale: run the update in docs/translations.rst"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalog_is_translated_throughout_with_nothing_fuzzy(locale: str) -> None:
    messages_ = [m for m in catalog(locale) if m.id]
    fuzzy = [m.id for m in messages_ if m.fuzzy]
    plurals = catalog(locale).num_plurals
    untranslated = [
        m.id
        for m in messages_
        if not m.string
        or (isinstance(m.string, tuple) and (len(m.string) != plurals or not all(m.string)))
    ]
    assert fuzzy == [] and untranslated == []


@pytest.mark.parametrize("locale", LOCALES)
def test_the_translations_keep_the_placeholders_of_the_source(locale: str) -> None:
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog(locale).check()]
    assert problems == []


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalog_is_up_to_date_with_its_po_file(locale: str) -> None:
    from babel.messages.mofile import read_mo

    path = Path(TRANSLATIONS) / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as mo:
        compiled = {_text(m.id): _text(m.string) for m in read_mo(mo) if m.id}
    source = {_text(m.id): _text(m.string) for m in catalog(locale) if m.id and not m.fuzzy}
    assert compiled == source, "run pybabel compile (docs/translations.rst)"


def _text(string: Any) -> Any:
    return string if isinstance(string, str) else tuple(string)


def test_without_flask_babel_installed_a_signed_in_request_imports_no_translation_code(
    tmp_path: Path,
) -> None:
    """No Flask-Babel at all: English, and serving requests imports no module of Babel that
    was not there after ``init_app`` (no new import cost on the request path)."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["flask_babel"] = None  # not installed
        from flask import Flask
        from flask_lucia import Lucia
        app = Flask(__name__, instance_path={str(tmp_path)!r})
        app.config.update(TESTING=True, SECRET_KEY="x")
        lucia = Lucia(app)
        before = {{m for m in sys.modules if "babel" in m}}
        client = app.test_client()
        client.environ_base["HTTP_ORIGIN"] = "http://localhost"
        body = {{"identifier": "ann@example.com", "password": "correct horse battery"}}
        assert client.post("/auth/sign-up", json=body).status_code in (200, 201)
        assert client.get("/auth/session").status_code == 200
        wrong = client.post("/auth/sign-in", json={{**body, "password": "wrong one!"}})
        assert wrong.json["message"] == "Wrong email or password.", wrong.json
        assert "Sign in" in app.test_client().get("/auth/sign-in").text
        assert {{m for m in sys.modules if "babel" in m}} == before
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.stdout.strip() == "ok", done.stderr
