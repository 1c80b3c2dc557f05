"""Password hashes: scrypt from the standard library, salted, its cost stored with each hash.

A stored hash reads `scrypt$<n>$<r>$<p>$<salt hex>$<key hex>`, so a hash made under older costs still
verifies after the cost is raised. Checking a password against no user costs one scrypt as well
(`verify(None, ...)`), so an unknown user name answers in the time a wrong password does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from reportserver.domain.errors import InvalidDefinition

MIN_LENGTH = 12
MAX_LENGTH = 256  # scrypt takes any length; a megabyte of password is a way to spend the server's CPU
SALT_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class PasswordHasher:
    """OWASP's scrypt floor is n = 2**17, r = 8, p = 1 (128 MiB, about half a second here); tests run
    with a cheaper n, read from the function's settings."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def hash(self, password: str) -> str:
        check_password(password)
        salt = secrets.token_bytes(SALT_BYTES)
        key = self._derive(password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${salt.hex()}${key.hex()}"

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` is the one `stored` was made from; with no stored hash (no such user), the
        same work against a throw-away salt, and False."""
        if len(password) > MAX_LENGTH:
            password = password[:MAX_LENGTH]  # refused below all the same: no hash is of a longer one
        try:
            _, n, r, p, salt, key = (stored or "").split("$")
            costs, salt_bytes, expected = (int(n), int(r), int(p)), bytes.fromhex(salt), bytes.fromhex(key)
        except ValueError:
            costs, salt_bytes, expected = (self.n, self.r, self.p), _DECOY_SALT, b""
        derived = self._derive(password, salt_bytes, *costs)
        return hmac.compare_digest(derived, expected) and bool(expected)

    @staticmethod
    def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        memory = 128 * r * n * p + 1024 * 1024 * 4  # scrypt's need, and room for the rest
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=KEY_BYTES)


_DECOY_SALT = secrets.token_bytes(SALT_BYTES)


def check_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidDefinition(f"A password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidDefinition(f"A password must be at most {MAX_LENGTH} characters")
    if not password.strip():
        raise InvalidDefinition("A password must not be blank")
