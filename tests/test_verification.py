"""Email verification (DESIGN §13) end to end through the test client and a real SMTP server:
the link at sign-up, resending, LUCIA_EMAIL_VERIFICATION, verified_required, and what the
request path reads."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_lucia import Lucia, login_required, signals
from flask_lucia.core.store.engine import Precompiled

from .conftest import ORIGIN, TEST_DATABASE_URL, AppFactory, sign_up, unique_prefix
from .mailserver import MailServer, flows_app
from .test_forms import csrf_token
from .test_signals import recording

ANN = "ann@example.com"
JSON = {"Accept": "application/json"}


def client_of(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


def record_queries(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement ``app`` sends from now on (as the suite's ``queries`` fixture)."""
    with app.app_context():
        engine = app.extensions["lucia"].storage.engine
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    first = Precompiled.first

    def recording_first(self: Precompiled, *args: Any) -> Any:
        seen.append(self.sql)
        return first(self, *args)

    monkeypatch.setattr(Precompiled, "first", recording_first)
    return seen


# -- the link -------------------------------------------------------------------------


def test_sign_up_mails_a_link_that_verifies_the_address(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp)
    client = client_of(app)
    sign_up(client, ANN)
    [message] = smtp.to(ANN)
    assert message["Subject"] == "Verify your email address"
    answer = client.get(smtp.link(ANN), headers=JSON)
    assert answer.status_code == 200 and answer.json == {"verified": True, "email": ANN}
    assert client.get("/auth/verify-email", headers=JSON).json == {"email": ANN, "verified": True}


def test_the_verification_link_page_says_so_and_sends_no_referrer(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    page = client.get(smtp.link(ANN))
    assert page.status_code == 200 and f"{ANN} is verified" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"


def test_a_verification_link_works_once(make_app: AppFactory, smtp: MailServer) -> None:
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    link = smtp.link(ANN)
    assert client.get(link, headers=JSON).status_code == 200
    again = client.get(link, headers=JSON)
    assert again.status_code == 400 and again.json["error"] == "AUTH_INVALID_TOKEN"
    page = client.get(link)
    assert page.status_code == 400 and "This link does not work" in page.text


def test_a_garbled_link_is_invalid_without_a_query(
    make_app: AppFactory, smtp: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = flows_app(make_app, smtp)
    client = client_of(app)
    seen = record_queries(app, monkeypatch)
    answer = client.get("/auth/verify-email/' OR 1=1 --", headers=JSON)
    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_TOKEN"
    assert seen == []


def test_verification_off_mails_nothing_at_sign_up(make_app: AppFactory, smtp: MailServer) -> None:
    client = client_of(flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off"))
    sign_up(client, ANN)
    assert smtp.messages == []


def test_a_sign_up_whose_mail_fails_still_signs_up(make_app: AppFactory, smtp: MailServer) -> None:
    smtp.refuse_data = "554 5.7.1 rejected"
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    assert client.get("/private").status_code == 200
    assert client.get("/auth/verify-email", headers=JSON).json == {"email": ANN, "verified": False}


def test_the_email_verified_signal_names_the_user_and_address(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp)
    client = client_of(app)
    user_id = sign_up(client, ANN)["user"]["user_id"]
    with recording(signals.email_verified) as sent:
        client.get(smtp.link(ANN))
    assert [(s, k["user"].user_id, k["email"]) for s, k in sent] == [(app, user_id, ANN)]


# -- resending -------------------------------------------------------------------------


def test_resending_mails_a_new_link_and_the_old_one_stops_working(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    first = smtp.link(ANN)
    answer = client.post("/auth/verify-email", json={})
    assert answer.json == {"sent": True, "email": ANN, "verified": False}
    second = smtp.link(ANN)
    assert second != first
    assert client.get(first, headers=JSON).json["error"] == "AUTH_INVALID_TOKEN"
    assert client.get(second, headers=JSON).status_code == 200


def test_resending_with_the_form_flashes_where_the_link_went(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    token = csrf_token(client.get("/auth/verify-email").text)
    answer = client.post("/auth/verify-email", data={"csrf_token": token})
    assert answer.status_code == 303
    assert f"A new link is on its way to {ANN}." in client.get(answer.location).text
    assert len(smtp.to(ANN)) == 2


def test_resending_needs_a_session(make_app: AppFactory, smtp: MailServer) -> None:
    client = client_of(flows_app(make_app, smtp))
    answer = client.post("/auth/verify-email", json={})
    assert answer.status_code == 401 and answer.json["error"] == "AUTH_NOT_AUTHENTICATED"


def test_a_verified_address_gets_no_new_link(make_app: AppFactory, smtp: MailServer) -> None:
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    client.get(smtp.link(ANN))
    answer = client.post("/auth/verify-email", json={})
    assert answer.json == {"sent": False, "email": None, "verified": True}
    assert len(smtp.to(ANN)) == 1


def test_resending_is_throttled_to_one_mail_a_minute_by_default(
    make_app: AppFactory, smtp: MailServer
) -> None:
    defaults = {
        "LUCIA_MAIL_ADDRESS_PER_MINUTE": 1,
        "LUCIA_MAIL_ADDRESS_PER_HOUR": 10,
        "LUCIA_MAIL_CLIENT_PER_MINUTE": 5,
        "LUCIA_MAIL_CLIENT_PER_HOUR": 50,
    }
    client = client_of(flows_app(make_app, smtp, **defaults))
    sign_up(client, ANN)  # the first mail of this minute
    answer = client.post("/auth/verify-email", json={})
    assert answer.status_code == 429 and answer.json["error"] == "AUTH_TOO_MANY_ATTEMPTS"
    assert 0 < int(answer.headers["Retry-After"]) <= 60
    assert len(smtp.to(ANN)) == 1


# -- LUCIA_EMAIL_VERIFICATION = "required" ----------------------------------------------


def test_required_sends_pages_to_the_verification_page_until_verified(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="required"))
    sign_up(client, ANN)
    answer = client.get("/private?tab=1")
    assert answer.status_code == 302
    assert answer.location == "/auth/verify-email?next=/private?tab%3D1"
    page = client.get(answer.location)
    assert page.status_code == 200 and f"open the link we sent to <strong>{ANN}" in page.text
    client.get(smtp.link(ANN))
    assert client.get("/private").status_code == 200


def test_required_answers_json_clients_with_email_not_verified(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="required"))
    sign_up(client, ANN)
    answer = client.get("/private", headers=JSON)
    assert answer.status_code == 403 and answer.json["error"] == "AUTH_EMAIL_NOT_VERIFIED"


def test_required_still_lets_the_user_sign_in_and_reach_the_account_pages(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="required"))
    sign_up(client, ANN)
    assert client.get("/auth/session").status_code == 200
    assert client.get("/auth/devices").status_code == 200
    assert client.get("/auth/change-password").status_code == 200


def test_required_holds_after_the_access_token_is_refreshed(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="required"))
    sign_up(client, ANN)
    client.delete_cookie("lucia_access_token", domain="localhost")
    answer = client.get("/private", headers=JSON)
    assert "lucia_access_token=" in answer.headers["Set-Cookie"]  # rotated from the refresh
    assert answer.status_code == 403 and answer.json["error"] == "AUTH_EMAIL_NOT_VERIFIED"
    client.get(smtp.link(ANN))
    client.delete_cookie("lucia_access_token", domain="localhost")
    answer = client.get("/private", headers=JSON)
    assert "lucia_access_token=" in answer.headers["Set-Cookie"]
    assert answer.status_code == 200


def test_required_reads_verification_in_the_one_query_of_the_request(
    make_app: AppFactory, smtp: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="required")
    client = client_of(app)
    sign_up(client, ANN)
    client.get(smtp.link(ANN))
    seen = record_queries(app, monkeypatch)
    assert client.get("/private").status_code == 200
    assert len(seen) == 1 and "email_verified_at" in seen[0]


@pytest.mark.parametrize("mode", ["off", "optional"])
def test_off_and_optional_leave_the_request_query_as_it_was(
    make_app: AppFactory, smtp: MailServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    app = flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION=mode)
    client = client_of(app)
    sign_up(client, ANN)
    seen = record_queries(app, monkeypatch)
    assert client.get("/private").status_code == 200
    assert len(seen) == 1 and "email_verified_at" not in seen[0]


def test_a_user_without_an_email_key_has_nothing_to_verify(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="required")
    client = client_of(app)
    with app.app_context():
        user = app.lucia.create_user("github", "42")  # type: ignore[attr-defined]
    from flask_lucia.testing import sign_in_client

    sign_in_client(client, user)
    assert client.get("/private").status_code == 200
    assert client.get("/verified").status_code == 200


# -- verified_required, User.email_verified, lucia.email_verified -------------------------


def test_verified_required_waits_for_the_link_even_when_verification_is_optional(
    make_app: AppFactory, smtp: MailServer
) -> None:
    client = client_of(flows_app(make_app, smtp))
    sign_up(client, ANN)
    assert client.get("/private").status_code == 200
    assert client.get("/verified", headers=JSON).json["error"] == "AUTH_EMAIL_NOT_VERIFIED"
    assert client.get("/verified").location == "/auth/verify-email?next=/verified"
    client.get(smtp.link(ANN))
    assert client.get("/verified").status_code == 200


def test_verified_required_needs_a_session(make_app: AppFactory, smtp: MailServer) -> None:
    client = client_of(flows_app(make_app, smtp))
    assert client.get("/verified", headers=JSON).status_code == 401


def test_user_email_verified_is_when_the_link_was_opened(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp)
    client = client_of(app)
    user_id = sign_up(client, ANN)["user"]["user_id"]
    with app.app_context():
        assert app.lucia.get_user(user_id).email_verified is None  # type: ignore[attr-defined]
    before = datetime.now(timezone.utc)
    client.get(smtp.link(ANN))
    with app.app_context():
        verified = app.lucia.get_user(user_id).email_verified  # type: ignore[attr-defined]
    assert isinstance(verified, datetime) and verified.tzinfo is not None
    assert abs((verified - before).total_seconds()) < 5


def test_a_user_model_app_reads_verification_through_the_api(
    tmp_path: Any, smtp: MailServer
) -> None:
    prefix = unique_prefix("ev_")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'ev.db'}",
        LUCIA_TABLE_PREFIX=prefix,
        LUCIA_EMAIL_VERIFICATION="required",
        **smtp.config,
    )
    db = SQLAlchemy(app)

    class Member(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = f"{prefix}member"
        id = db.Column(db.Integer, primary_key=True)

    lucia = Lucia(app, db=db, user_model=Member)
    with app.app_context():
        db.create_all()

    @app.get("/private")
    @login_required
    def private() -> str:
        return "in"

    try:
        client = client_of(app)
        user_id = sign_up(client, ANN)["user"]["user_id"]
        assert client.get("/private", headers=JSON).status_code == 403
        with app.app_context():
            assert lucia.email_verified(user_id) is None
        client.get(smtp.link(ANN))
        assert client.get("/private").text == "in"
        with app.app_context():
            assert isinstance(lucia.email_verified(user_id), datetime)
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
        Member.registry.dispose()
