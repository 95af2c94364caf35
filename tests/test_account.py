"""Changing the password and the email address, deleting the account (DESIGN §13), end to end
through the test client and a real SMTP server; and the email keys' start-up checks."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia import signals

from .conftest import ORIGIN, PASSWORD, AppFactory, Clock, cookie, sign_up
from .mailserver import MailServer, flows_app, text_of
from .test_forms import csrf_token
from .test_signals import recording

ANN, NEW_ANN, BOB = "ann@example.com", "ann@new.example", "bob@example.com"
NEW = "a brand new passphrase"
JSON = {"Accept": "application/json"}
#: The subject of the mail about a sign-in from a browser new to the account.
NEW_SIGN_IN = "New sign-in to your account"


@pytest.fixture
def app(make_app: AppFactory, smtp: MailServer) -> Flask:
    return flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off")


def client_of(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = ORIGIN
    return client


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Ann, signed up and signed in (a fresh session)."""
    client = client_of(app)
    sign_up(client, ANN)
    return client


def sign_in(app: Flask, email: str = ANN, password: str = PASSWORD) -> FlaskClient:
    other = client_of(app)
    answer = other.post("/auth/sign-in", json={"identifier": email, "password": password})
    assert answer.status_code == 200, answer.json
    return other


def keys_of(app: Flask, user_id: Any) -> list[str]:
    with app.app_context():
        return app.lucia.get_user_provider_ids(user_id)  # type: ignore[attr-defined, no-any-return]


# -- change password --------------------------------------------------------------------


def change_password(client: FlaskClient, current: str = PASSWORD, new: str = NEW) -> Any:
    return client.post(
        "/auth/change-password", json={"current_password": current, "new_password": new}
    )


def test_changing_the_password_needs_the_current_one(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    answer = change_password(client, current="not my password")
    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_PASSWORD"
    sign_in(app)  # the old password still works
    assert [m for m in smtp.messages if m["Subject"] != NEW_SIGN_IN] == []


def test_changing_the_password_ends_other_sessions_keeps_this_one_and_tells_the_user(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    phone = sign_in(app)
    answer = change_password(client)
    assert answer.status_code == 200 and answer.json == {"changed": True}
    assert client.get("/private").status_code == 200
    assert phone.get("/private", headers=JSON).status_code == 401
    sign_in(app, password=NEW)
    [notice] = [m for m in smtp.to(ANN) if m["Subject"] != NEW_SIGN_IN]
    assert notice["Subject"] == "Your password was changed"
    assert "every other device signed in to it was signed out" in text_of(notice)


def test_a_too_short_new_password_changes_nothing(client: FlaskClient, app: Flask) -> None:
    answer = change_password(client, new="short")
    assert answer.status_code == 400 and "at least 8 characters" in answer.json["message"]
    sign_in(app)


def test_changing_the_password_needs_a_session(app: Flask) -> None:
    assert change_password(client_of(app)).status_code == 401


def test_a_failed_notice_does_not_undo_the_new_password(
    client: FlaskClient, app: Flask, smtp: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.refuse_data = "451 4.3.0 try again later"
    assert change_password(client).status_code == 200
    sign_in(app, password=NEW)
    assert "could not send the email" in caplog.text


def test_the_change_password_form_says_which_field_is_wrong(client: FlaskClient) -> None:
    token = csrf_token(client.get("/auth/change-password").text)
    fields = {"csrf_token": token, "password": NEW, "confirm": NEW}
    wrong = client.post("/auth/change-password", data={**fields, "current_password": "nope"})
    assert wrong.status_code == 400 and "The current password is wrong." in wrong.text
    short = client.post(
        "/auth/change-password",
        data={**fields, "current_password": PASSWORD, "password": "short", "confirm": "short"},
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text
    done = client.post("/auth/change-password", data={**fields, "current_password": PASSWORD})
    assert done.status_code == 303


def test_a_form_posted_with_an_expired_token_says_so(client: FlaskClient) -> None:
    answer = client.post(
        "/auth/change-password",
        data={"csrf_token": "stale", "current_password": PASSWORD, "password": NEW, "confirm": NEW},
    )
    assert answer.status_code == 400 and "This form expired before it was sent." in answer.text


# -- change email -----------------------------------------------------------------------


def ask_change(client: FlaskClient, email: str = NEW_ANN) -> Any:
    return client.post("/auth/change-email", json={"email": email})


def test_changing_the_email_needs_a_fresh_session(
    client: FlaskClient, clock: Clock, smtp: MailServer
) -> None:
    clock.advance(11 * 60)  # LUCIA_FRESH_FOR is 10 minutes
    answer = ask_change(client)
    assert answer.status_code == 401 and answer.json["fresh_required"] is True
    assert client.get("/auth/change-email").location.startswith("/auth/confirm?next=")
    assert smtp.messages == []


def test_the_new_address_gets_a_link_and_the_switch_waits_for_it(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    user_id = client.get("/private").json["user_id"]
    answer = ask_change(client)
    assert answer.status_code == 200
    assert answer.json == {
        "email": NEW_ANN,
        "message": f"To finish, open the link we sent to {NEW_ANN}.",
    }
    assert smtp.to(NEW_ANN)[0]["Subject"] == "Confirm your new email address"
    assert keys_of(app, user_id) == [f"email:{ANN}"]  # nothing changed yet


def test_opening_the_link_rekeys_the_account_keeping_sessions_and_password(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    user_id = client.get("/private").json["user_id"]
    phone = sign_in(app)
    ask_change(client)
    answer = client_of(app).get(smtp.link(NEW_ANN), headers=JSON)  # another browser
    assert answer.status_code == 200 and answer.json == {"email": NEW_ANN}
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert keys_of(app, user_id) == [f"email:{NEW_ANN}"]
    assert client.get("/private").status_code == phone.get("/private").status_code == 200
    sign_in(app, NEW_ANN)
    with app.app_context():
        assert app.lucia.email_verified(user_id) is not None  # type: ignore[attr-defined]


def test_the_old_address_is_told_of_the_change(client: FlaskClient, smtp: MailServer) -> None:
    ask_change(client)
    client.get(smtp.link(NEW_ANN))
    [notice] = smtp.to(ANN)
    assert notice["Subject"] == "Your email address was changed"
    assert f"now uses {NEW_ANN}" in text_of(notice)


def test_a_change_link_works_once(client: FlaskClient, smtp: MailServer) -> None:
    ask_change(client)
    link = smtp.link(NEW_ANN)
    assert client.get(link, headers=JSON).status_code == 200
    assert client.get(link, headers=JSON).json["error"] == "AUTH_INVALID_TOKEN"


def test_an_expired_change_link_changes_nothing(
    client: FlaskClient, app: Flask, smtp: MailServer, clock: Clock
) -> None:
    user_id = client.get("/private").json["user_id"]
    ask_change(client)
    clock.advance(3601)  # LUCIA_CHANGE_EMAIL_TTL: one hour
    assert client.get(smtp.link(NEW_ANN), headers=JSON).json["error"] == "AUTH_INVALID_TOKEN"
    assert keys_of(app, user_id) == [f"email:{ANN}"]


def test_a_taken_address_gets_the_same_answer_a_note_and_no_link(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    sign_up(client_of(app), BOB)
    user_id = client.get("/private").json["user_id"]
    taken, free = ask_change(client, BOB), ask_change(client, NEW_ANN)
    assert taken.status_code == free.status_code == 200
    assert taken.json["message"] == f"To finish, open the link we sent to {BOB}."
    [note] = smtp.to(BOB)
    assert "you already have an account with this address" in text_of(note)
    assert "http" not in text_of(note)
    assert keys_of(app, user_id) == [f"email:{ANN}"]


def test_an_address_taken_after_the_link_was_sent_is_refused_when_opened(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    user_id = client.get("/private").json["user_id"]
    ask_change(client)
    sign_up(client_of(app), NEW_ANN)
    answer = client.get(smtp.link(NEW_ANN), headers=JSON)
    assert answer.status_code == 409 and answer.json["error"] == "AUTH_DUPLICATE_PROVIDER_ID"
    assert keys_of(app, user_id) == [f"email:{ANN}"]


def test_the_same_address_again_is_refused(client: FlaskClient, smtp: MailServer) -> None:
    answer = ask_change(client, ANN)
    assert answer.status_code == 400
    assert answer.json["message"] == "This is already your email address."
    assert smtp.messages == []


def test_a_verification_link_to_the_old_address_dies_with_the_change(
    make_app: AppFactory, smtp: MailServer
) -> None:
    app = flows_app(make_app, smtp)  # verification "optional": sign-up mails a link
    client = client_of(app)
    sign_up(client, ANN)
    old_link = smtp.link(ANN)
    ask_change(client)
    client.get(smtp.link(NEW_ANN))
    assert client.get(old_link, headers=JSON).json["error"] == "AUTH_INVALID_TOKEN"


def test_the_email_changed_signal_names_both_addresses(
    client: FlaskClient, app: Flask, smtp: MailServer
) -> None:
    ask_change(client)
    with recording(signals.email_changed) as sent:
        client.get(smtp.link(NEW_ANN))
    [(sender, kwargs)] = sent
    assert sender is app and (kwargs["old_email"], kwargs["new_email"]) == (ANN, NEW_ANN)


def test_the_change_email_form_mails_the_link(client: FlaskClient, smtp: MailServer) -> None:
    page = client.get("/auth/change-email")
    assert page.status_code == 200 and f"Your email address is {ANN}." in page.text
    assert '<label for="email">New email</label>' in page.text
    answer = client.post(
        "/auth/change-email", data={"csrf_token": csrf_token(page.text), "email": NEW_ANN}
    )
    assert answer.status_code == 200 and f"open the link we sent to {NEW_ANN}" in answer.text
    done = client.get(smtp.link(NEW_ANN))
    assert done.status_code == 200 and f"Your email address is now {NEW_ANN}." in done.text


# -- delete account ---------------------------------------------------------------------


def test_deleting_the_account_needs_a_fresh_session(client: FlaskClient, clock: Clock) -> None:
    clock.advance(11 * 60)
    answer = client.post("/auth/delete-account", json={})
    assert answer.status_code == 401 and answer.json["fresh_required"] is True


def test_deleting_the_account_deletes_the_user_and_signs_out(
    client: FlaskClient, app: Flask
) -> None:
    user_id = client.get("/private").json["user_id"]
    phone = sign_in(app)
    answer = client.post("/auth/delete-account", json={})
    assert answer.status_code == 200 and answer.json == {"deleted": True}
    assert cookie(client, "lucia_access_token") is None
    assert phone.get("/private", headers=JSON).status_code == 401
    storage = app.extensions["lucia"].storage
    with storage.engine.connect() as conn:
        assert conn.execute(sa.select(storage.users).where(storage.user_pk == user_id)).all() == []


def test_the_delete_form_needs_the_box_ticked(client: FlaskClient, app: Flask) -> None:
    token = csrf_token(client.get("/auth/delete-account").text)
    unticked = client.post("/auth/delete-account", data={"csrf_token": token})
    assert unticked.status_code == 400 and "Tick the box" in unticked.text
    ticked = client.post("/auth/delete-account", data={"csrf_token": token, "confirm": "y"})
    assert ticked.status_code == 303 and ticked.location == "/auth/done?what=account_deleted"
    assert client.get("/private", headers=JSON).status_code == 401


def test_account_deletion_off_answers_404(make_app: AppFactory, smtp: MailServer) -> None:
    app = flows_app(make_app, smtp, LUCIA_ACCOUNT_DELETION=False)
    client = client_of(app)
    sign_up(client, ANN)
    assert client.post("/auth/delete-account", json={}).status_code == 404
    assert client.get("/auth/delete-account").status_code == 404
    assert client.get("/private").status_code == 200


# -- the email keys at start-up -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("LUCIA_EMAIL_VERIFICATION", "always", ValueError),
        ("LUCIA_EMAIL_VERIFICATION", True, ValueError),
        ("LUCIA_RESET_TTL", "1h", TypeError),
        ("LUCIA_VERIFY_EMAIL_TTL", -1, ValueError),
        ("LUCIA_CHANGE_EMAIL_TTL", float("inf"), ValueError),
        ("LUCIA_ACCOUNT_DELETION", "no", TypeError),
        ("LUCIA_MAIL_ADDRESS_PER_MINUTE", 0, ValueError),
        ("LUCIA_MAIL_CLIENT_PER_HOUR", "50", TypeError),
        ("LUCIA_MAIL_ADDRESS_PER_HOUR", True, TypeError),
    ],
)
def test_a_bad_email_key_is_refused_at_start_up_naming_it(
    make_app: AppFactory, key: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=key):
        make_app(**{key: value})


def test_a_mail_limit_of_none_turns_it_off(make_app: AppFactory) -> None:
    app = make_app(LUCIA_MAIL_ADDRESS_PER_MINUTE=None, LUCIA_MAIL_CLIENT_PER_MINUTE=None)
    limits = app.extensions["lucia"].settings.mail_limits
    assert limits == (("address", 10, 3_600_000), ("client", 50, 3_600_000))
