import pytest

from medsight.errors import InputError
from medsight.serve.auth.tokens import (
    MIN_PASSWORD_LENGTH,
    TokenParts,
    hash_password,
    hash_secret,
    new_token,
    split_token,
    verify_password,
    verify_secret,
)


def test_new_token_round_trips_through_split() -> None:
    parts = new_token()
    assert parts.text.startswith("ms_") and len(parts.public_id) == 12
    assert split_token(parts.text) == parts
    assert parts.secret not in repr(parts)
    assert TokenParts("abcdefghijkl", "s" * 43).text == "ms_abcdefghijkl_" + "s" * 43


def test_tokens_are_unique() -> None:
    texts = {new_token().text for _ in range(200)}
    assert len(texts) == 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ms_",
        "Bearer ms_abc",
        "xx_abcdefghijkl_" + "a" * 43,
        "ms_ABCDEFGHIJKL_" + "a" * 43,  # public id is lower-case
        "ms_abcdefghijk_" + "a" * 43,  # public id one short
        "ms_abcdefghijkl_" + "a" * 42,  # secret one short
        "ms_abcdefghijkl_" + "a" * 44,
        "ms_abcdefghijkl_" + "a" * 42 + "=",
        "ms_abcdefghijkl_" + "a" * 43 + "\n",
        " ms_abcdefghijkl_" + "a" * 43,
    ],
)
def test_split_rejects_malformed(text: str) -> None:
    assert split_token(text) is None


def test_secret_hash_is_argon2id_and_verifies() -> None:
    parts = new_token()
    hashed = hash_secret(parts.secret)
    assert hashed.startswith("$argon2id$") and parts.secret not in hashed
    assert verify_secret(hashed, parts.secret)
    assert not verify_secret(hashed, new_token().secret)
    assert not verify_secret("not a hash", parts.secret)


def test_unknown_token_still_fails_after_a_check() -> None:
    assert not verify_secret(None, new_token().secret)


def test_password_rules_and_verification() -> None:
    with pytest.raises(InputError, match=str(MIN_PASSWORD_LENGTH)):
        hash_password("x" * (MIN_PASSWORD_LENGTH - 1))
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse battery!")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password(hashed, "x" * 5000)
