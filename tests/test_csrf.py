"""The Origin / Referer check: same origin or trusted passes, anything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_lucia.core.csrf import SAFE_METHODS, origin_allowed, origin_of

OWN = "http://localhost"
TRUSTED = frozenset({"https://app.example.com"})


def allowed(origin: str | None, referer: str | None = None, *, required: bool = True) -> bool:
    return origin_allowed(OWN, origin, referer, TRUSTED, required=required)


def test_safe_methods_are_the_rfc_safe_ones() -> None:
    assert frozenset({"GET", "HEAD", "OPTIONS", "TRACE"}) == SAFE_METHODS


def test_origin_of_drops_path_query_and_fragment() -> None:
    assert origin_of("https://Example.com:8443/a/b?c=d#e") == "https://example.com:8443"


@pytest.mark.parametrize("url", ["", "null", "/relative/path", "localhost:5000", "http://["])
def test_origin_of_a_url_without_origin_is_none(url: str) -> None:
    assert origin_of(url) is None


def test_same_origin_is_allowed() -> None:
    assert allowed("http://localhost") is True


def test_same_origin_in_other_case_is_allowed() -> None:
    assert allowed("HTTP://LocalHost") is True


def test_other_origin_is_refused() -> None:
    assert allowed("http://evil.example") is False


@pytest.mark.parametrize("origin", ["http://localhost:8080", "https://localhost"])
def test_other_port_or_scheme_is_refused(origin: str) -> None:
    assert allowed(origin) is False


def test_lookalike_host_is_refused() -> None:
    assert allowed("http://localhost.evil.example") is False


def test_trusted_origin_is_allowed() -> None:
    assert allowed("https://app.example.com") is True


def test_trusted_origin_in_other_case_is_allowed() -> None:
    assert allowed("https://APP.example.com") is True


def test_referer_is_used_when_origin_is_absent() -> None:
    assert allowed(None, "http://localhost/some/page?x=1") is True


def test_cross_site_referer_is_refused() -> None:
    assert allowed(None, "http://evil.example/http://localhost/") is False


def test_origin_wins_over_a_same_site_referer() -> None:
    assert allowed("http://evil.example", "http://localhost/page") is False


def test_no_header_is_refused_when_required() -> None:
    assert allowed(None, None, required=True) is False


def test_no_header_is_allowed_when_not_required() -> None:
    assert allowed(None, None, required=False) is True


def test_cross_site_origin_is_refused_even_when_not_required() -> None:
    assert allowed("http://evil.example", required=False) is False


def test_null_origin_is_refused() -> None:
    assert allowed("null", "http://localhost/page") is False


@pytest.mark.parametrize("origin", ["", "http://[", "localhost", "http://", "://localhost"])
def test_malformed_origin_is_refused(origin: str) -> None:
    assert allowed(origin) is False


@given(st.text())
def test_origin_of_never_raises(url: str) -> None:
    result = origin_of(url)
    assert result is None or result == result.lower()


@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()), st.booleans())
def test_origin_allowed_never_raises(
    origin: str | None, referer: str | None, required: bool
) -> None:
    assert allowed(origin, referer, required=required) in (True, False)


def test_origin_of_drops_the_default_port() -> None:
    assert origin_of("https://example.com:443/x") == "https://example.com"


def test_origin_of_drops_user_info() -> None:
    assert origin_of("http://user:pw@localhost/") == "http://localhost"


def test_origin_of_keeps_ipv6_brackets() -> None:
    assert origin_of("http://[::1]:5000/") == "http://[::1]:5000"
