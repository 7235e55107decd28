"""Agent passwords (gateway.agents.accounts): stored hashed, checked, refused when unusable."""

from __future__ import annotations

import pytest

from gateway.agents.accounts import (
    AccountError,
    check_new_account,
    hash_password,
    password_matches,
)


def test_a_password_is_stored_hashed_and_checks() -> None:
    stored = hash_password("correct horse battery")
    assert "correct horse battery" not in str(stored)
    assert stored["kdf"] == "scrypt"
    assert password_matches("correct horse battery", stored)
    assert not password_matches("correct horse batterY", stored)


def test_two_accounts_with_one_password_store_different_hashes() -> None:
    assert hash_password("same password")["hash"] != hash_password("same password")["hash"]


@pytest.mark.parametrize(
    ("name", "password", "why"),
    [("ada lovelace", "long enough", "not a usable agent name"), ("ada", "short", "at least 8")],
)
def test_an_unusable_name_or_short_password_is_refused(name: str, password: str, why: str) -> None:
    with pytest.raises(AccountError, match=why):
        check_new_account(name, password)
