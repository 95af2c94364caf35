"""Config parsing: durations to milliseconds, Settings.from_config, trusted origins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flask_lucia.config import DEFAULTS, Settings, to_ms

KEY = "LUCIA_ACCESS_TOKEN_TTL"


def settings(**config: Any) -> Settings:
    return Settings.from_config({**DEFAULTS, "TESTING": True, **config})


# to_ms


def test_int_seconds_become_milliseconds() -> None:
    assert to_ms(900, KEY) == 900_000


def test_float_seconds_become_whole_milliseconds() -> None:
    assert to_ms(1.5, KEY) == 1_500


def test_timedelta_becomes_milliseconds() -> None:
    assert to_ms(timedelta(minutes=15, milliseconds=7), KEY) == 900_007


def test_zero_is_accepted() -> None:
    assert to_ms(0, KEY) == 0


@pytest.mark.parametrize("value", [True, "900", None, [900]])
def test_non_duration_is_a_type_error_naming_the_key(value: object) -> None:
    with pytest.raises(TypeError, match=rf"^{KEY} must be seconds or a timedelta"):
        to_ms(value, KEY)


@pytest.mark.parametrize("value", [-1, -0.5, timedelta(seconds=-1)])
def test_negative_duration_is_a_value_error_naming_the_key(value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{KEY} must not be negative$"):
        to_ms(value, KEY)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_seconds_are_a_value_error_naming_the_key(value: float) -> None:
    with pytest.raises(ValueError, match=KEY):
        to_ms(value, KEY)


# Settings.from_config


def test_default_lifetimes_in_milliseconds() -> None:
    s = settings()
    assert (s.access_ttl, s.refresh_ttl, s.max_age, s.fresh_for, s.grace) == (
        15 * 60_000,
        14 * 86_400_000,
        30 * 86_400_000,
        10 * 60_000,
        30_000,
    )


def test_lifetime_in_seconds_is_accepted() -> None:
    assert settings(LUCIA_REFRESH_TOKEN_TTL=3600).refresh_ttl == 3_600_000


def test_invalid_lifetime_names_its_key() -> None:
    with pytest.raises(TypeError, match=r"^LUCIA_SESSION_MAX_AGE "):
        settings(LUCIA_SESSION_MAX_AGE="30d")


def test_default_cookie_settings() -> None:
    s = settings()
    assert (s.access_cookie, s.refresh_cookie) == ("lucia_access_token", "lucia_refresh_token")
    assert (s.cookie_secure, s.cookie_samesite, s.cookie_domain, s.cookie_path) == (
        None,
        "Lax",
        None,
        "/",
    )


def test_csrf_protection_is_on_by_default() -> None:
    assert settings().csrf is True


def test_csrf_protection_can_be_turned_off() -> None:
    assert settings(LUCIA_CSRF_PROTECTION=False).csrf is False


def test_no_trusted_origins_by_default() -> None:
    assert settings().trusted_origins == frozenset()


def test_trusted_origins_are_lowercased_without_trailing_slash() -> None:
    origins = ["HTTPS://App.Example.com/", "http://localhost:5000"]
    assert settings(LUCIA_TRUSTED_ORIGINS=origins).trusted_origins == frozenset(
        {"https://app.example.com", "http://localhost:5000"}
    )


def test_single_trusted_origin_string_is_one_origin() -> None:
    assert settings(LUCIA_TRUSTED_ORIGINS="https://app.example.com").trusted_origins == frozenset(
        {"https://app.example.com"}
    )


def test_public_user_columns_become_a_tuple() -> None:
    config = {**DEFAULTS, "TESTING": True, "LUCIA_PUBLIC_USER_COLUMNS": ["username"]}
    assert Settings.from_config(config, ("username", "age")).public_columns == ("username",)


@pytest.mark.parametrize("key", ["LUCIA_PUBLIC_USER_COLUMNS", "LUCIA_SIGN_UP_COLUMNS"])
def test_column_lists_must_name_user_columns(key: str) -> None:
    with pytest.raises(ValueError, match=f"{key}: is_admin not among the user columns"):
        Settings.from_config({**DEFAULTS, "TESTING": True, key: ["is_admin"]}, ("username",))


def test_sign_up_columns_default_to_none() -> None:
    assert (
        Settings.from_config({**DEFAULTS, "TESTING": True}, ("username", "age")).sign_up_columns
        == ()
    )


def test_public_user_columns_default_to_none() -> None:
    assert (
        Settings.from_config({**DEFAULTS, "TESTING": True}, ("username", "age")).public_columns
        == ()
    )


@pytest.mark.parametrize("key", ["LUCIA_PUBLIC_USER_COLUMNS", "LUCIA_SIGN_UP_COLUMNS"])
def test_a_column_list_of_none_is_refused_rather_than_read_as_every_column(key: str) -> None:
    with pytest.raises(TypeError, match=f"^{key} must list user column names, not None"):
        Settings.from_config({**DEFAULTS, "TESTING": True, key: None}, ("username",))


def test_a_trusted_origin_with_the_default_port_matches_what_browsers_send() -> None:
    s = settings(LUCIA_TRUSTED_ORIGINS=["https://app.example.com:443"])
    assert s.trusted_origins == frozenset({"https://app.example.com"})


@pytest.mark.parametrize("value", [None, 5])
def test_trusted_origins_that_are_not_a_list_are_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="LUCIA_TRUSTED_ORIGINS"):
        settings(LUCIA_TRUSTED_ORIGINS=value)


def test_a_trusted_origin_that_is_not_an_origin_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        settings(LUCIA_TRUSTED_ORIGINS=["app.example.com"])


def test_csrf_protection_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="LUCIA_CSRF_PROTECTION must be True or False"):
        settings(LUCIA_CSRF_PROTECTION="false")


def test_sign_up_is_open_by_default_and_must_be_a_bool() -> None:
    assert settings().sign_up is True and settings(LUCIA_SIGN_UP=False).sign_up is False
    with pytest.raises(TypeError, match=r"^LUCIA_SIGN_UP must be True or False"):
        settings(LUCIA_SIGN_UP="false")


def test_max_body_size_is_64_kib_by_default_and_may_be_none() -> None:
    assert settings().max_body_size == 65_536
    assert settings(LUCIA_MAX_BODY_SIZE=None).max_body_size is None


@pytest.mark.parametrize(
    ("value", "error"), [("64k", TypeError), (True, TypeError), (0, ValueError)]
)
def test_a_bad_max_body_size_names_its_key(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^LUCIA_MAX_BODY_SIZE must"):
        settings(LUCIA_MAX_BODY_SIZE=value)


# -- LUCIA_COOKIE_HOST_PREFIX ----------------------------------------------------------------


def test_the_host_prefix_is_off_by_default() -> None:
    assert settings().access_cookie == "lucia_access_token"


def test_the_host_prefix_prefixes_both_names_once_and_makes_them_secure() -> None:
    s = settings(LUCIA_COOKIE_HOST_PREFIX=True, LUCIA_REFRESH_COOKIE_NAME="__Host-r")
    assert (s.access_cookie, s.refresh_cookie) == ("__Host-lucia_access_token", "__Host-r")
    assert s.cookie_secure is True  # None (automatic) would drop them in debug and testing


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"LUCIA_COOKIE_DOMAIN": "example.com"}, "LUCIA_COOKIE_DOMAIN"),
        ({"LUCIA_COOKIE_PATH": "/app"}, "LUCIA_COOKIE_PATH"),
        ({"LUCIA_COOKIE_SECURE": False}, "LUCIA_COOKIE_SECURE"),
    ],
)
def test_host_prefixed_cookies_refuse_what_browsers_would_drop(
    config: dict[str, Any], key: str
) -> None:
    with pytest.raises(ValueError, match=rf"{key} .*LUCIA_COOKIE_HOST_PREFIX"):
        settings(LUCIA_COOKIE_HOST_PREFIX=True, **config)


def test_a_host_prefixed_cookie_name_is_held_to_the_same_rules() -> None:
    with pytest.raises(ValueError, match="LUCIA_COOKIE_DOMAIN is set"):
        settings(LUCIA_ACCESS_COOKIE_NAME="__Host-a", LUCIA_COOKIE_DOMAIN="example.com")


def test_a_secure_prefixed_cookie_name_needs_secure_but_may_have_a_domain() -> None:
    s = settings(LUCIA_ACCESS_COOKIE_NAME="__Secure-a", LUCIA_COOKIE_DOMAIN="example.com")
    assert s.cookie_secure is True
    with pytest.raises(ValueError, match="LUCIA_COOKIE_SECURE is False"):
        settings(LUCIA_ACCESS_COOKIE_NAME="__Secure-a", LUCIA_COOKIE_SECURE=False)


def test_the_host_prefix_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"^LUCIA_COOKIE_HOST_PREFIX must be True or False"):
        settings(LUCIA_COOKIE_HOST_PREFIX="auto")


def test_device_cookies_are_on_for_a_year_by_default() -> None:
    s = settings()
    assert (s.device_cookie, s.device_max_age) == ("lucia_device", 365 * 86_400_000)


def test_device_cookies_can_be_turned_off() -> None:
    assert settings(LUCIA_DEVICE_COOKIE_NAME=None).device_cookie is None


@pytest.mark.parametrize("value", ["", 5, "lucia_access_token", "lucia_refresh_token"])
def test_a_bad_device_cookie_name_is_refused_naming_the_key(value: object) -> None:
    with pytest.raises(ValueError, match=r"^LUCIA_DEVICE_COOKIE_NAME must"):
        settings(LUCIA_DEVICE_COOKIE_NAME=value)


# LUCIA_IDENTIFIER_LABEL


def test_the_identifier_label_is_email_for_the_email_provider() -> None:
    assert settings().identifier_label == "Email"


@pytest.mark.parametrize(
    ("provider", "label"), [("username", "Username"), ("employee_number", "Employee number")]
)
def test_the_identifier_label_is_named_after_another_provider(provider: str, label: str) -> None:
    assert settings(LUCIA_PASSWORD_PROVIDER=provider).identifier_label == label


def test_an_identifier_label_the_app_sets_wins() -> None:
    configured = settings(LUCIA_PASSWORD_PROVIDER="username", LUCIA_IDENTIFIER_LABEL="Login")
    assert configured.identifier_label == "Login"


@pytest.mark.parametrize("value", [42, b"Email", ["Email"]])
def test_an_identifier_label_that_is_not_a_str_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=r"^LUCIA_IDENTIFIER_LABEL must be a str or None"):
        settings(LUCIA_IDENTIFIER_LABEL=value)


def test_an_empty_identifier_label_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^LUCIA_IDENTIFIER_LABEL must not be empty"):
        settings(LUCIA_IDENTIFIER_LABEL="  ")
