"""PasswordHasher: argon2id hashes, NFKC, length limits, legacy verifiers and the rehash policy."""

from __future__ import annotations

import hashlib
import unicodedata

import argon2
import bcrypt
import pytest
from werkzeug.security import generate_password_hash

import flask_lucia.core.passwords
from flask_lucia.core.passwords import PasswordHasher, Verdict
from flask_lucia.errors import LuciaError

PASSWORD = "correct horse battery"
WRONG = "correct horse battery!"
#: Werkzeug's formats with small work factors, to keep the suite fast.
WERKZEUG_METHODS = ["pbkdf2:sha256:1000", "scrypt:1024:8:1"]
SALT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # hex, as Lucia v2 made them; used as text


@pytest.fixture
def hasher() -> PasswordHasher:
    """A fast hasher (8 MiB, t=1): enough for everything but the default parameters."""
    return PasswordHasher(memory_cost=8192, time_cost=1)


def lucia_scrypt(password: str, salt: str, block_size: int) -> str:
    """The hex key Lucia's scrypt derives: N=16384, p=1, 64 bytes, NFKC, salt as UTF-8."""
    key = hashlib.scrypt(
        unicodedata.normalize("NFKC", password).encode(),
        salt=salt.encode(),
        n=16384,
        r=block_size,
        p=1,
        dklen=64,
        maxmem=64 * 1024 * 1024,
    )
    return key.hex()


# argon2id


def test_default_parameters_are_owasp_minimum() -> None:
    assert PasswordHasher().hash(PASSWORD).startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_new_hash_is_argon2id_with_configured_parameters() -> None:
    hasher = PasswordHasher(memory_cost=8192, time_cost=1, parallelism=2)
    assert hasher.hash(PASSWORD).startswith("$argon2id$v=19$m=8192,t=1,p=2$")


def test_right_password_verifies(hasher: PasswordHasher) -> None:
    assert hasher.verify(hasher.hash(PASSWORD), PASSWORD) == Verdict(ok=True, needs_rehash=False)


def test_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    assert hasher.verify(hasher.hash(PASSWORD), WRONG) == Verdict(ok=False, needs_rehash=False)


def test_hash_with_weaker_parameters_needs_rehash() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert PasswordHasher().verify(weak, PASSWORD) == Verdict(ok=True, needs_rehash=True)


def test_argon2i_hash_with_same_parameters_needs_rehash(hasher: PasswordHasher) -> None:
    stored = argon2.PasswordHasher(
        time_cost=1, memory_cost=8192, parallelism=1, type=argon2.Type.I
    ).hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) == Verdict(ok=True, needs_rehash=True)


def test_outdated_hash_with_wrong_password_asks_no_rehash(hasher: PasswordHasher) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1).hash(PASSWORD)
    assert hasher.verify(weak, WRONG) == Verdict(ok=False, needs_rehash=False)


def test_unknown_user_costs_a_full_hash(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: str, password: str) -> bool:
        verified.append(stored)
        return real_verify(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    assert hasher.verify(None, PASSWORD) == Verdict(ok=False)
    assert len(verified) == 1
    assert not hasher._argon2.check_needs_rehash(verified[0])  # same cost as a real hash


# NFKC and length limits


def test_ligature_password_verifies_as_its_nfkc_form(hasher: PasswordHasher) -> None:
    assert hasher.verify(hasher.hash("\ufb01nest-password"), "finest-password").ok is True


def test_nfkc_form_verifies_as_the_ligature_password(hasher: PasswordHasher) -> None:
    assert hasher.verify(hasher.hash("finest-password"), "\ufb01nest-password").ok is True


def test_normalize_returns_nfkc(hasher: PasswordHasher) -> None:
    assert hasher.normalize("\ufb01nest-password") == "finest-password"


def test_new_password_shorter_than_minimum_is_refused(hasher: PasswordHasher) -> None:
    with pytest.raises(LuciaError) as caught:
        hasher.hash("1234567")
    assert caught.value.code == "AUTH_INVALID_PASSWORD"


def test_new_password_of_minimum_length_is_accepted(hasher: PasswordHasher) -> None:
    assert hasher.normalize("12345678", new=True) == "12345678"


def test_normalize_new_enforces_the_minimum(hasher: PasswordHasher) -> None:
    with pytest.raises(LuciaError, match="at least 8") as caught:
        hasher.normalize("short", new=True)
    assert caught.value.code == "AUTH_INVALID_PASSWORD"


def test_existing_password_skips_the_minimum(hasher: PasswordHasher) -> None:
    assert hasher.normalize("short") == "short"


def test_rehash_skips_the_minimum(hasher: PasswordHasher) -> None:
    assert hasher.verify(hasher.hash("short", new=False), "short").ok is True


def test_minimum_is_configurable() -> None:
    hasher = PasswordHasher(memory_cost=8192, time_cost=1, min_length=12)
    with pytest.raises(LuciaError, match="at least 12"):
        hasher.hash("12345678901")


def test_password_of_maximum_length_is_accepted(hasher: PasswordHasher) -> None:
    assert hasher.normalize("x" * 256) == "x" * 256


@pytest.mark.parametrize("new", [True, False])
def test_password_over_maximum_is_always_refused(hasher: PasswordHasher, new: bool) -> None:
    with pytest.raises(LuciaError, match="at most 256") as caught:
        hasher.normalize("x" * 257, new=new)
    assert caught.value.code == "AUTH_INVALID_PASSWORD"


def test_maximum_counts_the_normalized_password(hasher: PasswordHasher) -> None:
    with pytest.raises(LuciaError, match="at most 256"):
        hasher.hash("\ufb03" * 100)  # 100 ligatures, 300 letters after NFKC


def test_minimum_counts_the_password_as_typed(hasher: PasswordHasher) -> None:
    with pytest.raises(LuciaError, match="at least 8") as caught:
        hasher.normalize("\ufb03" * 3, new=True)  # 3 ligatures typed, 9 letters after NFKC
    assert caught.value.code == "AUTH_INVALID_PASSWORD"


def test_an_oversized_password_is_refused_before_it_is_normalized(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    normalized: list[int] = []
    real_normalize = unicodedata.normalize

    def spy(form: str, text: str) -> str:
        normalized.append(len(text))
        return real_normalize(form, text)

    monkeypatch.setattr(unicodedata, "normalize", spy)
    with pytest.raises(LuciaError, match="at most 256") as caught:
        hasher.normalize("\ufb03" * 10_000_000)
    assert caught.value.code == "AUTH_INVALID_PASSWORD"
    assert normalized == []


@pytest.mark.parametrize("password", [None, b"password123", 12345678])
def test_non_string_password_is_a_type_error(hasher: PasswordHasher, password: object) -> None:
    with pytest.raises(TypeError, match="password must be a str"):
        hasher.hash(password)  # type: ignore[arg-type]


# Legacy hashes: verify, then ask for a rehash


def test_lucia_s2_scrypt_hash_verifies_and_needs_rehash(hasher: PasswordHasher) -> None:
    stored = f"s2:{SALT}:{lucia_scrypt(PASSWORD, SALT, 16)}"
    assert hasher.verify(stored, PASSWORD) == Verdict(ok=True, needs_rehash=True)


def test_lucia_s2_scrypt_hash_refuses_wrong_password(hasher: PasswordHasher) -> None:
    stored = f"s2:{SALT}:{lucia_scrypt(PASSWORD, SALT, 16)}"
    assert hasher.verify(stored, WRONG).ok is False


def test_lucia_s2_scrypt_hash_normalizes_the_password(hasher: PasswordHasher) -> None:
    stored = f"s2:{SALT}:{lucia_scrypt('finest-password', SALT, 16)}"
    assert hasher.verify(stored, "\ufb01nest-password").ok is True


def test_old_lucia_scrypt_hash_verifies_and_needs_rehash(hasher: PasswordHasher) -> None:
    stored = f"{SALT}:{lucia_scrypt(PASSWORD, SALT, 8)}"
    assert hasher.verify(stored, PASSWORD) == Verdict(ok=True, needs_rehash=True)


def test_old_lucia_scrypt_hash_refuses_wrong_password(hasher: PasswordHasher) -> None:
    stored = f"{SALT}:{lucia_scrypt(PASSWORD, SALT, 8)}"
    assert hasher.verify(stored, WRONG).ok is False


def test_old_lucia_scrypt_hash_uses_block_size_8(hasher: PasswordHasher) -> None:
    stored = f"{SALT}:{lucia_scrypt(PASSWORD, SALT, 16)}"  # an s2 key without its prefix
    assert hasher.verify(stored, PASSWORD).ok is False


@pytest.mark.parametrize("method", WERKZEUG_METHODS)
def test_werkzeug_hash_verifies_and_needs_rehash(hasher: PasswordHasher, method: str) -> None:
    stored = generate_password_hash(PASSWORD, method=method)
    assert hasher.verify(stored, PASSWORD) == Verdict(ok=True, needs_rehash=True)


@pytest.mark.parametrize("method", WERKZEUG_METHODS)
def test_werkzeug_hash_refuses_wrong_password(hasher: PasswordHasher, method: str) -> None:
    stored = generate_password_hash(PASSWORD, method=method)
    assert hasher.verify(stored, WRONG).ok is False


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$", "$2y$"])
def test_bcrypt_hash_verifies_and_needs_rehash(hasher: PasswordHasher, prefix: str) -> None:
    stored = prefix + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()[4:]
    assert hasher.verify(stored, PASSWORD) == Verdict(ok=True, needs_rehash=True)


def test_bcrypt_hash_refuses_wrong_password(hasher: PasswordHasher) -> None:
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify(stored, WRONG).ok is False


def test_bcrypt_hash_of_a_long_password_verifies(hasher: PasswordHasher) -> None:
    password = "long passphrase " * 6  # 96 bytes; bcrypt only ever used the first 72
    stored = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify(stored, password).ok is True


def test_bcrypt_hash_without_bcrypt_package_is_outdated(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    monkeypatch.setattr(flask_lucia.core.passwords, "_bcrypt", None)
    with pytest.raises(LuciaError) as caught:
        hasher.verify(stored, PASSWORD)
    assert caught.value.code == "AUTH_OUTDATED_PASSWORD"


@pytest.mark.parametrize("stored", ["md5$abc", "a:b:c:d", "s2:salt:nothex", "s3:salt:00", ""])
def test_unknown_hash_format_is_outdated(hasher: PasswordHasher, stored: str) -> None:
    with pytest.raises(LuciaError) as caught:
        hasher.verify(stored, PASSWORD)
    assert caught.value.code == "AUTH_OUTDATED_PASSWORD"
