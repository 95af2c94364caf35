"""Security activity (DESIGN §20): one event per kind, written with the change it records,
shown to its owner only (JSON and the devices page), listed for admins, pruned."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lucia.errors import LuciaError
from flask_lucia.testing import sign_in_client

from .conftest import PASSWORD, AppFactory, Clock, cookie, sign_up
from .mailserver import MailServer, flows_app, text_of
from .soft_authenticator import SoftAuthenticator
from .test_passkeys import register
from .test_two_factor import browser, turn_on

ANN, BOB = "ann@example.com", "bob@example.com"
FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0"
NEW = "a brand new passphrase"


@pytest.fixture
def app(make_app: AppFactory, smtp: MailServer) -> Flask:
    """The suite's app, mailing through a real SMTP server; no mail limits."""
    return flows_app(make_app, smtp, LUCIA_EMAIL_VERIFICATION="off")  # type: ignore[no-any-return]


def events(client: FlaskClient, **query: Any) -> list[dict[str, Any]]:
    """The client's user's events, as ``GET /auth/activity`` answers them."""
    answer = client.get("/auth/activity", query_string=query)
    assert answer.status_code == 200, answer.json
    found: list[dict[str, Any]] = answer.json["events"]
    return found


def kinds(client: FlaskClient) -> list[str]:
    return [event["kind"] for event in events(client)]


def stored(app: Flask) -> list[tuple[Any, ...]]:
    """Every row of the events table: ``(user_id, kind, amr)``, oldest first."""
    table = app.extensions["lucia"].storage.schema.events
    with app.extensions["lucia"].storage.engine.connect() as conn:
        stmt = sa.select(table.c.user_id, table.c.kind, table.c.amr).order_by(table.c.id)
        return [tuple(row) for row in conn.execute(stmt)]


def ann(app: Flask, agent: str = FIREFOX) -> tuple[FlaskClient, str]:
    """Ann, signed up in a browser; the browser and her user id."""
    client = browser(app, agent)
    return client, sign_up(client, ANN)["user"]["user_id"]


def _raise(*_: Any) -> None:
    """A write that the database refuses."""
    raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))


def sign_in(client: FlaskClient, password: str = PASSWORD, who: str = ANN) -> Any:
    return client.post("/auth/sign-in", json={"identifier": who, "password": password})


# -- one test per kind --------------------------------------------------------------------


def test_a_password_sign_in_is_recorded_with_its_device_address_and_way_in(app: Flask) -> None:
    client, _ = ann(app)
    assert sign_in(client).status_code == 200

    newest = events(client)[0]

    assert newest["kind"] == "sign_in" and newest["amr"] == ["pwd"]
    assert newest["device"] == "Firefox on Android" and newest["ip"] == "127.0.0.1"


def test_a_wrong_password_is_recorded_as_a_failed_sign_in(app: Flask) -> None:
    client, _ = ann(app)
    assert sign_in(browser(app, "curl/8.0"), "not her password").status_code == 400

    failed = events(client)[0]

    assert failed["kind"] == "sign_in_failed" and failed["device"] == "curl"


def test_a_wrong_code_after_the_right_password_is_recorded(app: Flask, clock: Clock) -> None:
    owner, user_id = ann(app)
    turn_on(owner, clock)
    intruder = browser(app, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
    assert sign_in(intruder).status_code == 401  # the password was right: the code step

    wrong = intruder.post("/auth/two-factor/verify", json={"code": "000000"})

    assert wrong.status_code == 400
    assert stored(app)[-1] == (user_id, "second_factor_failed", None)
    page = owner.get("/auth/devices").text
    before = page.split("Someone typed a wrong two-factor code on Firefox on Linux")[0]
    assert before.rsplit("<li", 1)[1].startswith(' class="alert"')  # marked like a wrong password


def test_an_unknown_identifier_records_nothing(app: Flask) -> None:
    ann(app)
    before = stored(app)

    assert sign_in(browser(app), who="nobody@example.com").status_code == 400

    assert stored(app) == before


def test_a_sign_in_from_a_browser_new_to_the_account_records_new_device(app: Flask) -> None:
    client, _ = ann(app)
    assert "new_device" not in kinds(client)  # signing up is not a new device

    laptop = browser(app, "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36")
    assert sign_in(laptop).status_code == 200

    assert kinds(laptop)[:2] == ["new_device", "sign_in"] or kinds(laptop)[:2] == [
        "sign_in",
        "new_device",
    ]
    assert events(laptop)[0]["device"] == "Chrome on Linux"


def test_a_replayed_refresh_token_records_refresh_reuse(app: Flask, clock: Clock) -> None:
    client, user_id = ann(app)
    with app.app_context():
        lucia = app.lucia  # type: ignore[attr-defined]
        _, tokens = lucia.create_session(user_id)
        _, rotated = lucia.refresh_session(tokens.refresh_token)
        lucia.validate_access_token(rotated.access_token)  # the new pair is in use
        clock.advance(120)
        with pytest.raises(Exception, match="reused"):
            lucia.refresh_session(tokens.refresh_token)

    assert kinds(client)[0] == "refresh_reuse"


def test_signing_out_everywhere_is_recorded(app: Flask) -> None:
    client, user_id = ann(app)
    with app.app_context():
        app.lucia.invalidate_all_user_sessions(user_id)  # type: ignore[attr-defined]
    sign_in_client(client, user_id)

    assert "signed_out_everywhere" in kinds(client)


def test_changing_the_password_is_recorded(app: Flask) -> None:
    client, _ = ann(app)
    answer = client.post(
        "/auth/change-password", json={"current_password": PASSWORD, "new_password": NEW}
    )
    assert answer.status_code == 200, answer.json

    assert kinds(client)[0] == "password_changed"


def test_a_password_reset_is_recorded(app: Flask, smtp: MailServer) -> None:
    ann(app)
    client = browser(app)
    client.post("/auth/reset-password", json={"email": ANN})
    assert client.post(smtp.link(ANN), json={"password": NEW}).status_code == 200

    assert "password_reset" in kinds(client)


def test_an_email_change_is_recorded(app: Flask, smtp: MailServer) -> None:
    client, _ = ann(app)
    assert client.post("/auth/change-email", json={"email": BOB}).status_code == 200
    assert client.get(smtp.link(BOB)).status_code in (200, 303)

    assert kinds(client)[0] == "email_changed"


def test_linking_a_provider_is_recorded(app: Flask) -> None:
    client, user_id = ann(app)
    with app.app_context():
        app.lucia.add_provider_id(user_id, "github", "1234")  # type: ignore[attr-defined]

    assert kinds(client)[0] == "provider_linked"


def test_unlinking_a_provider_is_recorded(app: Flask) -> None:
    client, user_id = ann(app)
    with app.app_context():
        app.lucia.add_provider_id(user_id, "github", "1234")  # type: ignore[attr-defined]
        app.lucia.remove_provider_id(user_id, "github", "1234")  # type: ignore[attr-defined]

    assert kinds(client)[:2] == ["provider_unlinked", "provider_linked"]


def test_adding_a_passkey_is_recorded(app: Flask) -> None:
    client, _ = ann(app)
    assert register(client, SoftAuthenticator(), "Laptop").status_code == 201

    assert kinds(client)[0] == "passkey_added"


def test_removing_a_passkey_is_recorded(app: Flask) -> None:
    client, _ = ann(app)
    passkey = register(client, SoftAuthenticator(), "Laptop").json["passkey"]
    assert client.delete(f"/auth/passkeys/{passkey['id']}").status_code == 200

    assert kinds(client)[0] == "passkey_removed"


def test_turning_the_second_factor_on_is_recorded(app: Flask, clock: Clock) -> None:
    client, _ = ann(app)
    turn_on(client, clock)

    assert kinds(client)[0] == "second_factor_on"


def test_turning_the_second_factor_off_is_recorded(app: Flask, clock: Clock) -> None:
    client, _ = ann(app)
    turn_on(client, clock)
    assert client.delete("/auth/two-factor").status_code == 200

    assert kinds(client)[:2] == ["second_factor_off", "second_factor_on"]


def test_making_new_recovery_codes_is_recorded(app: Flask, clock: Clock) -> None:
    client, _ = ann(app)
    turn_on(client, clock)
    assert client.post("/auth/two-factor/recovery-codes", json={}).status_code == 200

    assert kinds(client)[:2] == ["recovery_codes_new", "second_factor_on"]


def test_deleting_an_account_keeps_only_its_account_deleted_event(app: Flask) -> None:
    _, user_id = ann(app)
    with app.app_context():
        app.lucia.delete_user(user_id)  # type: ignore[attr-defined]

    assert stored(app) == [(user_id, "account_deleted", None)]


def test_the_admin_lists_a_deleted_accounts_event_by_its_id(app: Flask) -> None:
    _, user_id = ann(app)
    with app.app_context():
        app.lucia.delete_user(user_id)  # type: ignore[attr-defined]

    result = app.test_cli_runner().invoke(args=["lucia", "activity", user_id])

    assert result.exit_code == 0 and "account_deleted" in result.output


# -- with the change, or never in its way ---------------------------------------------------


def test_a_change_whose_event_cannot_be_written_does_not_happen(app: Flask) -> None:
    _, user_id = ann(app)
    storage = app.extensions["lucia"].storage
    storage.event_writers.insert(0, _raise)
    with app.app_context(), pytest.raises(LuciaError) as failed:
        app.lucia.update_user_password(user_id, NEW)  # type: ignore[attr-defined]
    storage.event_writers.remove(_raise)

    assert failed.value.code == "DATABASE_UPDATE_FAILED"
    assert sign_in(browser(app)).status_code == 200  # the old password still works


def test_a_failing_events_write_does_not_fail_a_sign_in(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = ann(app)
    app.extensions["lucia_activity"].write_many = _raise
    answer = sign_in(client)

    assert answer.status_code == 200 and cookie(client, "lucia_access_token")
    assert client.get("/private").status_code == 200
    assert "could not record a sign-in event" in caplog.text


def test_a_failing_events_write_does_not_fail_a_wrong_password_answer(app: Flask) -> None:
    ann(app)
    app.extensions["lucia"].storage.event_writers.insert(0, _raise)

    assert sign_in(browser(app), "not her password").json["error"] == "AUTH_INVALID_PASSWORD"


def test_a_sign_in_adds_one_insert_and_a_signed_in_request_none(
    app: Flask, queries: list[str]
) -> None:
    client, _ = ann(app)
    queries.clear()
    sign_in(client)
    inserts = [q for q in queries if q.startswith("INSERT") and "events" in q]
    queries.clear()
    client.get("/private")

    assert len(inserts) == 1
    assert len(queries) == 1 and "events" not in queries[0]


# -- who sees what --------------------------------------------------------------------------


def test_a_user_sees_only_their_own_events(app: Flask) -> None:
    ann_client, _ = ann(app)
    bob = browser(app)
    sign_up(bob, BOB)
    sign_in(bob, "wrong password", BOB)
    sign_in(ann_client)

    assert "sign_in_failed" not in kinds(ann_client)
    assert "sign_in_failed" in kinds(bob)


def test_activity_needs_a_session(app: Flask) -> None:
    answer = browser(app).get("/auth/activity")

    assert answer.status_code == 401 and answer.json["error"] == "AUTH_NOT_AUTHENTICATED"


def test_activity_answers_kind_at_device_ip_and_amr_newest_first(app: Flask) -> None:
    client, _ = ann(app)
    sign_in(client)

    answer = client.get("/auth/activity").json

    assert set(answer) == {"events", "next"} and answer["next"] is None
    assert all(set(e) == {"kind", "at", "device", "ip", "amr"} for e in answer["events"])
    times = [event["at"] for event in answer["events"]]
    assert times == sorted(times, reverse=True) and all(isinstance(t, int) for t in times)


def test_activity_pages_with_limit_and_before(app: Flask, clock: Clock) -> None:
    client, _ = ann(app)
    for _ in range(4):
        clock.advance(1)
        sign_in(client)
    everything = events(client, limit=100)

    first = client.get("/auth/activity?limit=2").json
    second = client.get(f"/auth/activity?limit=2&before={first['next']}").json

    assert first["events"] + second["events"] == everything[:4]
    assert first["next"] == first["events"][-1]["at"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "before=-1", "before=1e9"])
def test_bad_paging_is_a_400_not_a_500(app: Flask, query: str) -> None:
    client, _ = ann(app)

    answer = client.get(f"/auth/activity?{query}")

    assert answer.status_code == 400 and answer.json["error"] == "AUTH_INVALID_REQUEST"


def test_the_devices_page_tells_the_recent_activity_in_words(app: Flask) -> None:
    client, _ = ann(app)
    sign_in(client)
    client.post("/auth/change-password", json={"current_password": PASSWORD, "new_password": NEW})

    page = client.get("/auth/devices").text

    assert 'id="activity"' in page and "Recent activity" in page
    assert "Signed in with a password on Firefox on Android," in page
    assert "Changed the password on Firefox on Android," in page and "just now" in page


def test_the_new_device_mail_links_to_the_recent_activity(app: Flask, smtp: MailServer) -> None:
    ann(app)
    sign_in(browser(app, "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"))

    assert "http://localhost/auth/devices#activity" in text_of(smtp.to(ANN)[-1])


# -- admins and retention -------------------------------------------------------------------


def test_the_cli_lists_a_users_events_of_some_kinds(app: Flask) -> None:
    client, _ = ann(app)
    sign_in(client, "wrong password")
    sign_in(client)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["lucia", "activity", ANN, "--kind", "sign_in_failed"])
    since = runner.invoke(args=["lucia", "activity", ANN, "--since", "1h"])

    assert result.exit_code == 0 and result.stdout.count("\n") == 1
    assert "sign_in_failed" in result.output and 'device="Firefox on Android"' in result.output
    assert since.exit_code == 0 and "sign_in " in since.output and "amr=pwd" in since.output


def test_the_cli_refuses_an_unknown_kind_or_date(app: Flask) -> None:
    ann(app)
    runner = app.test_cli_runner()

    kind = runner.invoke(args=["lucia", "activity", ANN, "--kind", "coffee"])
    since = runner.invoke(args=["lucia", "activity", ANN, "--since", "yesterday"])

    assert kind.exit_code == 2 and "unknown kind" in kind.output
    assert since.exit_code == 2 and "not a date" in since.output


def test_cleanup_prunes_events_older_than_activity_keep(make_app: AppFactory, clock: Clock) -> None:
    app = make_app(LUCIA_ACTIVITY_KEEP=3600)
    client, _ = ann(app)
    clock.advance(3601)
    sign_in(client)

    result = app.test_cli_runner().invoke(args=["lucia", "cleanup"])

    assert result.exit_code == 0
    assert [kind for _, kind, _ in stored(app)] == ["sign_in"]


def test_an_existing_database_gets_the_events_table(make_app: AppFactory, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    first = make_app(LUCIA_DATABASE_URL=url, LUCIA_TABLE_PREFIX="x_")
    storage = first.extensions["lucia"].storage
    storage.schema.events.drop(storage.engine)
    storage.dispose()

    again = make_app(LUCIA_DATABASE_URL=url, LUCIA_TABLE_PREFIX="x_")
    client, _ = ann(again)

    assert kinds(client) == ["sign_in"]
