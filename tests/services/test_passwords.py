"""Provisional passwords and their hashes: alphabet, entropy, argon2id parameters."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest
from argon2 import PasswordHasher, Type

from bot.services.accounts import passwords
from bot.services.accounts.passwords import (
    PROVISIONAL_ALPHABET,
    canonical_provisional_input,
    chosen_password_is_strong,
    generate_provisional_password,
    hash_chosen_password,
    hash_parameters,
    hash_provisional_password,
    hash_provisional_passwords,
    needs_rehash,
    verify_password,
)

DRAWS = 10_000

# The product's argon2id parameters themselves (tests/conftest.py).
pytestmark = pytest.mark.production_argon2


@pytest.fixture(scope="module")
def draws() -> list[str]:
    return [generate_provisional_password() for _ in range(DRAWS)]


@pytest.fixture  # per test: made after `production_argon2` put the product's parameters back
def provisional_hash() -> str:
    return hash_provisional_password("BUNZ57DM")


def test_the_alphabet_is_upper_case_letters_and_digits_without_ambiguous_ones() -> None:
    assert set(PROVISIONAL_ALPHABET).isdisjoint("0O1I")
    assert set(PROVISIONAL_ALPHABET) == set("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    assert len(PROVISIONAL_ALPHABET) == len(set(PROVISIONAL_ALPHABET)) == 32


def test_a_provisional_password_has_8_characters_from_the_alphabet(draws: list[str]) -> None:
    assert all(len(password) == 8 for password in draws)
    assert set("".join(draws)) <= set(PROVISIONAL_ALPHABET)


def test_every_allowed_character_appears_and_no_password_repeats(draws: list[str]) -> None:
    assert set("".join(draws)) == set(PROVISIONAL_ALPHABET)
    # 40 bits each: a repeat among 10,000 draws has a probability of about 5e-5.
    assert len(set(draws)) == DRAWS


def test_characters_are_drawn_uniformly(draws: list[str]) -> None:
    counts = Counter("".join(draws))
    expected = DRAWS * 8 / len(PROVISIONAL_ALPHABET)  # 2,500 per character
    chi_square = sum((counts[char] - expected) ** 2 / expected for char in PROVISIONAL_ALPHABET)
    # 31 degrees of freedom: mean 31, standard deviation 7.9; 150 is 15 deviations away, so a
    # fair generator never fails this while a biased one (a missing or doubled symbol) does.
    assert chi_square < 150
    positions = [Counter(password[i] for password in draws) for i in range(8)]
    # Each position on its own: 312.5 expected per character, standard deviation about 17.4.
    assert all(150 < count < 500 for counter in positions for count in counter.values())


def test_passwords_come_from_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords.secrets, "choice", lambda alphabet: alphabet[-1])

    assert generate_provisional_password() == "99999999"


def test_provisional_hashes_are_argon2id_with_owasp_minimum_parameters(
    provisional_hash: str,
) -> None:
    assert provisional_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hash_parameters(provisional_hash) == (19456, 2, 1)
    assert "BUNZ57DM" not in provisional_hash


def test_a_hash_verifies_its_password_only(provisional_hash: str) -> None:
    assert verify_password(provisional_hash, "BUNZ57DM")
    assert not verify_password(provisional_hash, "BUNZ57DN")
    assert not verify_password(provisional_hash, "")


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_provisional_password("BUNZ57DM") != hash_provisional_password("BUNZ57DM")


@pytest.mark.parametrize(
    "bad_hash",
    [None, "", "BUNZ57DM", "$argon2id$v=19$m=19456,t=2,p=1$broken", "$argon2id$é", "$2b$12$abc"],
)
def test_verifying_against_a_missing_or_broken_hash_is_false_not_an_error(
    bad_hash: str | None,
) -> None:
    assert verify_password(bad_hash, "BUNZ57DM") is False


def test_only_argon2id_hashes_are_accepted() -> None:
    argon2i = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I)

    assert not verify_password(argon2i.hash("BUNZ57DM"), "BUNZ57DM")


def test_chosen_passwords_use_the_stronger_parameters() -> None:
    chosen = hash_chosen_password("Vacances-2026!")

    assert chosen.startswith("$argon2id$")
    memory, time_cost, parallelism = hash_parameters(chosen)
    assert memory >= 47104 and memory * time_cost > 19456 * 2
    assert (memory, time_cost, parallelism) == (65536, 3, 4)
    assert verify_password(chosen, "Vacances-2026!")
    assert not needs_rehash(chosen, chosen=True)


def test_hashes_made_with_older_parameters_need_a_rehash(provisional_hash: str) -> None:
    assert not needs_rehash(provisional_hash, chosen=False)
    assert needs_rehash(provisional_hash, chosen=True)  # too weak for a chosen password
    assert needs_rehash("not a hash", chosen=True)


def test_chosen_passwords_are_compared_after_unicode_normalisation() -> None:
    composed = "Été-à-la-mer-2026"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed

    assert verify_password(hash_chosen_password(composed), decomposed)


def test_pool_hashing_returns_one_hash_per_password_in_order() -> None:
    clear = [generate_provisional_password() for _ in range(12)]  # above the inline threshold

    hashes = hash_provisional_passwords(clear)

    assert len(hashes) == len(clear)
    assert all(verify_password(h, password) for h, password in zip(hashes, clear, strict=True))
    assert not verify_password(hashes[0], clear[1])
    assert all(hash_parameters(h) == (19456, 2, 1) for h in hashes)


def test_small_batches_are_hashed_inline_and_empty_ones_cost_nothing() -> None:
    assert hash_provisional_passwords([]) == []
    [single] = hash_provisional_passwords(["BUNZ57DM"])
    assert verify_password(single, "BUNZ57DM")


def test_a_provisional_password_is_read_in_any_case_and_spacing() -> None:
    assert canonical_provisional_input(" bunz 57dm\n") == "BUNZ57DM"


@pytest.mark.parametrize(
    ("password", "strong"),
    [
        ("Vacances-2026!", True),  # 12+ with the four kinds
        ("Ab1!Ab1!Ab1!", True),
        ("Ab1!Ab1!Ab1", False),  # 11 characters
        ("Vacances20262026", True),  # 14+ with upper, lower, digits
        ("vacances2026vacances", False),  # no upper case
        ("Vacances2026", False),  # 12 without special characters
        ("BUNZ57DM", False),  # a provisional password is not a chosen one
        ("Aa1!" * 100, False),  # absurdly long
    ],
)
def test_chosen_passwords_follow_the_cnil_recommendation(password: str, strong: bool) -> None:
    assert chosen_password_is_strong(password) is strong
