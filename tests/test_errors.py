"""LuciaError: the DESIGN §9 codes, each with an HTTP status and a message, and its JSON body."""

from __future__ import annotations

from typing import get_args

import pytest

from flask_lucia.errors import STATUS, ErrorCode, LuciaError

#: DESIGN §9, in its order, with the status each answers with (§3 for those it names).
EXPECTED_STATUS = {
    "AUTH_INVALID_ACCESS_TOKEN": 401,
    "AUTH_INVALID_REFRESH_TOKEN": 401,
    "AUTH_INVALID_PASSWORD": 400,
    "AUTH_INVALID_PROVIDER_ID": 400,
    "AUTH_INVALID_USER_ID": 404,
    "AUTH_DUPLICATE_PROVIDER_ID": 409,
    "AUTH_DUPLICATE_USER_DATA": 409,
    "AUTH_OUTDATED_PASSWORD": 400,
    "AUTH_INVALID_REQUEST": 403,
    "AUTH_NOT_AUTHENTICATED": 401,
    "AUTH_TOO_MANY_ATTEMPTS": 429,
    "DATABASE_FETCH_FAILED": 503,
    "DATABASE_UPDATE_FAILED": 503,
    "UNKNOWN_ERROR": 500,
    # DESIGN §17, in its order (§12: AUTH_USER_REFERENCED is 409 over HTTP)
    "AUTH_LAST_PROVIDER_ID": 409,
    "AUTH_USER_REFERENCED": 409,
    "AUTH_INVALID_TOKEN": 400,
    "AUTH_EMAIL_NOT_VERIFIED": 403,
    "AUTH_OAUTH_FAILED": 400,
    "AUTH_SECOND_FACTOR_REQUIRED": 401,
    "AUTH_INVALID_CODE": 400,
    "AUTH_SECOND_FACTOR_SETUP_REQUIRED": 401,
}
CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)


def test_error_codes_are_the_design_codes() -> None:
    assert list(CODES) == list(EXPECTED_STATUS)


def test_every_code_has_a_status() -> None:
    assert set(STATUS) == set(CODES)


@pytest.mark.parametrize(("code", "status"), EXPECTED_STATUS.items())
def test_status_of_each_code(code: ErrorCode, status: int) -> None:
    assert LuciaError(code).status == status


def test_unknown_user_answers_like_a_wrong_password() -> None:
    assert (
        LuciaError("AUTH_INVALID_PROVIDER_ID").status == LuciaError("AUTH_INVALID_PASSWORD").status
    )


@pytest.mark.parametrize("code", CODES)
def test_every_code_has_a_default_message(code: ErrorCode) -> None:
    assert LuciaError(code).message.strip() != ""


def test_default_messages_are_distinct() -> None:
    assert len({LuciaError(code).message for code in CODES}) == len(CODES)


def test_code_is_an_attribute() -> None:
    assert LuciaError("AUTH_NOT_AUTHENTICATED").code == "AUTH_NOT_AUTHENTICATED"


def test_default_message() -> None:
    assert LuciaError("AUTH_NOT_AUTHENTICATED").message == "Sign in to continue."


def test_message_can_be_given() -> None:
    assert LuciaError("AUTH_INVALID_PASSWORD", "too short").message == "too short"


def test_str_names_code_and_message() -> None:
    assert (
        str(LuciaError("AUTH_INVALID_PASSWORD", "too short")) == "AUTH_INVALID_PASSWORD: too short"
    )


def test_to_dict_is_the_json_error_body() -> None:
    assert LuciaError("AUTH_INVALID_REQUEST").to_dict() == {
        "error": "AUTH_INVALID_REQUEST",
        "message": "The request failed the cross-site request check.",
    }


def test_is_an_exception() -> None:
    assert issubclass(LuciaError, Exception)
