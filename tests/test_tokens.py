"""Random strings and tokens: alphabet, entropy, digests, shape checks, checksums, sealing,
refresh token families."""

from __future__ import annotations

import hashlib
import math
import secrets
import string
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_lucia.core.tokens import (
    ALPHABET,
    FAMILY_LENGTH,
    TOKEN_LENGTH,
    checksum,
    digest,
    family_digest,
    generate_random_string,
    is_well_formed,
    new_refresh_token,
    new_token,
    seal,
    unseal,
)

ALPHANUMERIC = set(string.ascii_letters + string.digits)
ACCESS = "A" * 16 + "b" * 16
REFRESH = "0123456789abcdefghijklmnopqrstuv"
HOLDER = "Zz9" * 10 + "Qq"


# generate_random_string


def test_random_string_has_the_requested_length() -> None:
    assert len(generate_random_string(57)) == 57


def test_random_string_uses_only_letters_and_digits() -> None:
    assert set(generate_random_string(2000)) <= ALPHANUMERIC


def test_random_string_draws_from_the_whole_alphabet() -> None:
    assert set(generate_random_string(10_000)) == ALPHANUMERIC


def test_random_string_letters_are_equally_likely() -> None:
    counts = Counter(generate_random_string(124_000))
    assert all(1700 < counts[letter] < 2300 for letter in ALPHANUMERIC)  # 2000 +- 6.8 sigma


def test_random_string_drops_bytes_past_the_last_full_cycle_of_the_alphabet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 62 letters: bytes 248..255 would favour the first eight letters, so they are skipped.
    monkeypatch.setattr(secrets, "token_bytes", lambda n: bytes([248, 255, 0, 61, 62, 33]))
    assert generate_random_string(4) == "a9aH"


def test_random_string_from_a_non_ascii_alphabet() -> None:
    value = generate_random_string(300, "αβγ")
    assert len(value) == 300 and set(value) == set("αβγ")


def test_random_strings_are_distinct() -> None:
    assert generate_random_string(32) != generate_random_string(32)


def test_random_string_of_length_zero_is_empty() -> None:
    assert generate_random_string(0) == ""


def test_negative_length_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        generate_random_string(-1)


@pytest.mark.parametrize("length", [True, 8.0, "8", None])
def test_non_int_length_is_a_type_error(length: object) -> None:
    with pytest.raises(TypeError, match="length must be an int"):
        generate_random_string(length)  # type: ignore[arg-type]


# new_token


def test_new_token_is_32_characters() -> None:
    assert len(new_token()) == 32


def test_new_token_carries_at_least_128_bits() -> None:
    assert set(ALPHABET) == ALPHANUMERIC
    assert TOKEN_LENGTH * math.log2(len(ALPHABET)) >= 128


def test_new_tokens_are_distinct() -> None:
    assert len({new_token() for _ in range(1000)}) == 1000


# digest and is_well_formed


def test_digest_is_the_sha256_hex_of_the_token() -> None:
    assert digest(ACCESS) == hashlib.sha256(ACCESS.encode()).hexdigest()


def test_new_token_is_well_formed() -> None:
    assert is_well_formed(new_token()) is True


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length_is_not_well_formed(length: int) -> None:
    assert is_well_formed("a" * length) is False


@pytest.mark.parametrize("token", ["\u00e9" * 32, "\uff10" * 32, "a" * 31 + "-", "a" * 31 + " "])
def test_non_ascii_or_non_alphanumeric_is_not_well_formed(token: str) -> None:
    assert is_well_formed(token) is False


@pytest.mark.parametrize("token", [None, ACCESS.encode(), 12345678901234567890123456789012])
def test_non_string_is_not_well_formed(token: object) -> None:
    assert is_well_formed(token) is False


@given(st.text())
def test_is_well_formed_never_raises(text: str) -> None:
    expected = len(text) == TOKEN_LENGTH and set(text) <= ALPHANUMERIC
    assert is_well_formed(text) is expected


# checksum


def test_checksum_is_stable() -> None:
    assert checksum("session-1") == checksum("session-1")


def test_checksum_is_32_hex_characters() -> None:
    assert len(checksum("session-1")) == 32
    assert set(checksum("session-1")) <= set(string.hexdigits.lower())


def test_checksum_differs_per_session_id() -> None:
    assert checksum("session-1") != checksum("session-2")


def test_checksum_is_not_the_session_id() -> None:
    session_id = checksum("session-1")  # an id that already looks like a checksum
    assert checksum(session_id) != session_id


# seal and unseal


def test_unseal_returns_the_sealed_pair() -> None:
    assert unseal(HOLDER, seal(HOLDER, ACCESS, REFRESH)) == (ACCESS, REFRESH)


def test_sealed_bytes_hide_both_tokens() -> None:
    sealed = seal(HOLDER, ACCESS, REFRESH)
    assert ACCESS.encode() not in sealed
    assert REFRESH.encode() not in sealed


def test_another_token_cannot_unseal_the_pair() -> None:
    sealed = seal(HOLDER, ACCESS, REFRESH)
    try:
        opened: tuple[str, str] | None = unseal(new_token(), sealed)
    except ValueError:  # the pad of another token yields bytes that are not ASCII
        opened = None
    assert opened != (ACCESS, REFRESH)


# refresh token families


def test_a_new_refresh_token_is_well_formed_and_starts_a_new_family() -> None:
    first, second = new_refresh_token(), new_refresh_token()
    assert is_well_formed(first)
    assert first[:FAMILY_LENGTH] != second[:FAMILY_LENGTH]


def test_a_rotated_refresh_token_keeps_the_family_and_draws_the_rest_anew() -> None:
    old = new_refresh_token()
    new = new_refresh_token(old)
    assert is_well_formed(new)
    assert new[:FAMILY_LENGTH] == old[:FAMILY_LENGTH]
    assert new[FAMILY_LENGTH:] != old[FAMILY_LENGTH:]
    assert family_digest(new) == family_digest(old)


def test_the_part_drawn_for_each_refresh_token_carries_at_least_128_bits() -> None:
    assert (TOKEN_LENGTH - FAMILY_LENGTH) * math.log2(len(ALPHABET)) >= 128


def test_a_family_digest_is_no_tokens_digest() -> None:
    token = new_refresh_token()
    assert family_digest(token) != digest(token)
    assert family_digest(token) != digest(token[:FAMILY_LENGTH])
