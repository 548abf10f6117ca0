"""API tokens and passwords: how they look, how they are made, and how they are checked.

An API token is ``ms_<public id>_<secret>``: the public id (12 characters of ``[a-z0-9]``,
so it never contains the ``_`` separator) finds the token's row, and the secret (32 random
bytes, URL-safe base64) is checked against the row's argon2id hash. Only the hash is stored,
so a copy of the database cannot be used to call the service. Passwords are argon2id-hashed
the same way.

Checking is constant-time where it matters: argon2's own verification compares in constant
time, and when the public id or user is unknown the caller still verifies against a dummy
hash (`verify_secret` / `verify_password` with ``None``), so the response time does not tell
whether a token id or a user name exists.

argon2-cffi's default parameters (RFC 9106 low-memory profile: 64 MiB, 3 passes) cost tens
of milliseconds and 64 MiB per check; at most `ARGON2_SLOTS` checks run at once, so a burst
of bad credentials cannot exhaust the service's memory.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
import threading
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medsight.errors import InputError

TOKEN_PREFIX = "ms"
PUBLIC_ID_LENGTH = 12
SECRET_BYTES = 32
MIN_PASSWORD_LENGTH = 12
#: long enough for any passphrase, short enough that a request cannot make hashing expensive
MAX_PASSWORD_LENGTH = 1024
ARGON2_SLOTS = 4

_PUBLIC_ID_ALPHABET = string.ascii_lowercase + string.digits
# base64url of 32 bytes without padding is 43 characters
_TOKEN_PATTERN = re.compile(
    rf"{TOKEN_PREFIX}_(?P<public_id>[a-z0-9]{{{PUBLIC_ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})"
)
_HASHER = PasswordHasher()
_SLOTS = threading.BoundedSemaphore(ARGON2_SLOTS)


@dataclass(frozen=True)
class TokenParts:
    """The two halves of an API token; ``text`` is what the client sends."""

    public_id: str
    secret: str = field(repr=False)  # kept out of logs and tracebacks

    @property
    def text(self) -> str:
        return f"{TOKEN_PREFIX}_{self.public_id}_{self.secret}"


def new_token() -> TokenParts:
    """A fresh random token (about 62 bits of public id, 256 bits of secret)."""
    public_id = "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
    return TokenParts(public_id, secrets.token_urlsafe(SECRET_BYTES))


def split_token(text: str) -> TokenParts | None:
    """The parts of a token as sent by a client, or None when it is not a medsight token."""
    match = _TOKEN_PATTERN.fullmatch(text)
    if match is None:
        return None
    return TokenParts(match["public_id"], match["secret"])


def _hash(secret: str) -> str:
    with _SLOTS:
        return _HASHER.hash(secret)


def _verify(hashed: str, secret: str) -> bool:
    with _SLOTS:
        try:
            return _HASHER.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False


@functools.cache
def _dummy_hash() -> str:
    # made with the same parameters as real hashes, so verifying against it takes as long
    return _hash(secrets.token_urlsafe(SECRET_BYTES))


def hash_secret(secret: str) -> str:
    """The argon2id hash (PHC string, ``$argon2id$...``) stored for a token's secret."""
    return _hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    """Whether ``secret`` matches ``secret_hash``; None (unknown token) is checked and fails.

    Args:
        secret_hash: the stored hash, or None when no token has the public id sent.
        secret: the secret the client sent.

    Returns:
        True only when the hash is real and matches.
    """
    if secret_hash is None:
        _verify(_dummy_hash(), secret)
        return False
    return _verify(secret_hash, secret)


def check_password_rules(password: str) -> None:
    """Refuse a password that is too short or too long to set.

    Raises:
        InputError: shorter than `MIN_PASSWORD_LENGTH` (guessable) or longer than
            `MAX_PASSWORD_LENGTH` characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"password: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"password: use at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id hash of a new password, after `check_password_rules`.

    Raises:
        InputError: the password breaks the length rules.
    """
    check_password_rules(password)
    return _hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; None (no such user or no password) is checked and fails."""
    if password_hash is None or len(password) > MAX_PASSWORD_LENGTH:
        _verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return False
    return _verify(password_hash, password)
