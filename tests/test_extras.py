"""A feature whose extra is not installed is not offered: its pages' links are hidden, its
endpoints answer a 404 that names the extra, and a configuration that asks for it stops
``init_app`` with a message that says what to install."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, render_template_string

from flask_lucia import Lucia

from .conftest import ORIGIN, AppFactory, sign_up, user_columns
from .without_extras import block

Missing = Callable[..., None]


@pytest.fixture
def missing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Missing]:
    """``missing("pyotp", ...)``: those packages cannot be imported until the test ends."""
    finders = []

    def make(*names: str) -> None:
        for module in list(sys.modules):
            if module.partition(".")[0] in names:
                monkeypatch.delitem(sys.modules, module)
        finders.append(block(names))

    yield make
    for finder in finders:
        sys.meta_path.remove(finder)


MFA = ("pyotp", "segno", "webauthn", "cryptography")


def test_without_the_mfa_extra_the_two_factor_page_answers_404_naming_the_extra(
    make_app: AppFactory, missing: Missing
) -> None:
    missing(*MFA)
    client = make_app().test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client)
    page = client.get("/auth/two-factor", headers={"Accept": "text/html"})
    as_json = client.get("/auth/two-factor", headers={"Accept": "application/json"})
    assert page.status_code == 404 and "Two-factor sign-in is not installed" in page.text
    assert as_json.status_code == 404
    assert as_json.json == {
        "error": "AUTH_INVALID_REQUEST",
        "message": 'Two-factor sign-in is not installed: pip install "flask-lucia[mfa]"',
    }


def test_the_missing_extra_is_named_in_the_visitors_language(
    make_app: AppFactory, missing: Missing
) -> None:
    flask_babel = pytest.importorskip("flask_babel")
    missing("webauthn")
    app = make_app()
    flask_babel.Babel(app, locale_selector=lambda: "de")
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN

    answer = client.post("/auth/passkeys/sign-in/options", json={})

    assert answer.status_code == 404
    assert answer.json["message"] == (
        'Passkeys sind nicht installiert: pip install "flask-lucia[mfa]"'
    )


def test_without_webauthn_the_passkey_ceremonies_answer_json_naming_the_extra(
    make_app: AppFactory, missing: Missing
) -> None:
    missing("webauthn")
    client = make_app().test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    sign_up(client)
    for path in ("register/options", "sign-in/options"):
        answer = client.post(f"/auth/passkeys/{path}", json={})
        assert answer.status_code == 404 and "flask-lucia[mfa]" in answer.json["message"]
    assert client.get("/auth/passkeys", headers={"Accept": "application/json"}).status_code == 200


def test_without_webauthn_no_page_offers_a_passkey(make_app: AppFactory, missing: Missing) -> None:
    missing("webauthn")
    app = make_app()
    app.add_url_rule(
        "/offers",
        "offers",
        lambda: render_template_string('{{ lucia_offers("passkeys") }} {{ lucia_offers("x") }}'),
    )
    client = app.test_client()
    assert client.get("/offers").text == "False True"
    assert "lucia-passkey" not in client.get("/auth/sign-in").text


def test_with_the_extras_every_feature_is_offered(make_app: AppFactory) -> None:
    app = make_app()
    app.add_url_rule(
        "/offers",
        "offers",
        lambda: render_template_string(
            '{{ lucia_offers("passkeys") }} {{ lucia_offers("two_factor") }}'
        ),
    )
    assert app.test_client().get("/offers").text == "True True"
    assert "data-lucia-passkey-sign-in" in app.test_client().get("/auth/sign-in").text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LUCIA_WEBAUTHN_RP_ID", "example.com"),
        ("LUCIA_WEBAUTHN_ORIGIN", "https://example.com"),
    ],
)
def test_a_relying_party_configured_without_webauthn_stops_init_app(
    key: str, value: str, missing: Missing
) -> None:
    missing("webauthn")
    app = Flask(__name__)
    app.config.update({key: value, "LUCIA_DATABASE_URL": "sqlite://", "TESTING": True})
    with pytest.raises(RuntimeError, match=rf"{key} asks for passkeys.*flask-lucia\[mfa\]"):
        Lucia(app, user_columns=user_columns())


def test_a_totp_issuer_configured_without_the_mfa_extra_stops_init_app(missing: Missing) -> None:
    missing("pyotp")
    app = Flask(__name__)
    app.config.update(LUCIA_TOTP_ISSUER="Example", LUCIA_DATABASE_URL="sqlite://", TESTING=True)
    with pytest.raises(RuntimeError, match=r"LUCIA_TOTP_ISSUER.*flask-lucia\[mfa\]"):
        Lucia(app, user_columns=user_columns())
