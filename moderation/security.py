"""Passwords, tokens and login throttling for the staff console.

Passwords are hashed with argon2id (``argon2-cffi``). Session and CSRF tokens are random; only
the SHA-256 of a session token is stored. Failed logins are counted per account (in the
database: ``Staff.failed_logins`` / ``locked_until``) and per client address (in memory, per
console process).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Longest password accepted (argon2 hashes anything, but there is no reason to hash megabytes).
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 12

_hasher = PasswordHasher()
#: Verified when the account does not exist, so that both answers take comparable time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(24))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; with no hash (unknown user) a dummy is checked anyway."""
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[:MAX_PASSWORD_CHARS]
        password_hash = None
    try:
        ok = _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def password_problem(password: str) -> str | None:
    """A French explanation when ``password`` is not acceptable, else None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"Le mot de passe doit compter au moins {MIN_PASSWORD_CHARS} caractères."
    if len(password) > MAX_PASSWORD_CHARS:
        return f"Le mot de passe doit compter au plus {MAX_PASSWORD_CHARS} caractères."
    if "\x00" in password:
        return "Le mot de passe contient un caractère invalide."
    return None


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    if not given or not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


class AddressThrottle:
    """Failed logins per client address over a sliding window (in memory)."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, addr: str, now: datetime) -> deque[datetime]:
        q = self._failures.setdefault(addr, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, addr: str, now: datetime) -> bool:
        q = self._recent(addr, now)
        blocked = len(q) >= self.limit
        if not q:
            self._failures.pop(addr, None)
        return blocked

    def failed(self, addr: str, now: datetime) -> None:
        self._recent(addr, now).append(now)
        if len(self._failures) > 100_000:  # bound memory under a distributed attack
            oldest = next(iter(self._failures))
            self._failures.pop(oldest, None)

    def succeeded(self, addr: str) -> None:
        self._failures.pop(addr, None)
