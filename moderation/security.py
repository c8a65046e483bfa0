"""Passwords, tokens and login throttling for the staff console.

Passwords are hashed with argon2id (``argon2-cffi``). Session and CSRF tokens are random; only
the SHA-256 of a session token is stored. Failed logins are counted per account (in the
database: ``Staff.failed_logins`` / ``locked_until``) and per client address (in memory, per
console process), both checked before hashing (:class:`LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
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


#: Bidirectional-text controls (embeddings, overrides, isolates, marks): they make a text read
#: otherwise than it is stored (``\u202e`` turns ``gpj.exe`` into ``exe.jpg``).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def show_bidi(text: str) -> str:
    """``text`` with each bidi control written out as ``\\u202e`` (visible and inert)."""
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Throttle:
    """Failures per key over a sliding window (in memory, per console process)."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}
        #: Keys whose current block has been reported once (see :meth:`first_refusal`).
        self._reported: set[str] = set()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def count(self, key: str, now: datetime) -> int:
        """Failures of ``key`` within the window."""
        n = len(self._recent(key, now))
        if not n:
            self._failures.pop(key, None)
            self._reported.discard(key)
        return n

    def blocked(self, key: str, now: datetime) -> bool:
        blocked = self.count(key, now) >= self.limit
        if not blocked:
            self._reported.discard(key)
        return blocked

    def first_refusal(self, key: str) -> bool:
        """True once per block of ``key``: the refusal worth an audit entry (the next ones,
        until the block lifts, cost nothing)."""
        if key in self._reported:
            return False
        self._reported.add(key)
        if len(self._reported) > 100_000:
            self._reported.clear()
        return True

    def failed(self, key: str, now: datetime) -> None:
        self._recent(key, now).append(now)
        if len(self._failures) > 100_000:  # bound memory under a distributed attack
            oldest = next(iter(self._failures))
            self._failures.pop(oldest, None)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
        self._reported.discard(key)


class LoginThrottle:
    """The sign-in limits, both checked before any password is hashed.

    - per client address, over every account (several colleagues may share one address, so
      ``4 x max_failed_logins``);
    - per account and address: once an account is locked (``Staff.locked_until``, after
      ``max_failed_logins`` failures from anywhere), an address that failed on it within the
      window is refused without a hash, while an address that did not may still try, and the
      right password from it signs in and lifts the lock. Hammering an account from a few
      addresses thus never locks its owner out for ever.
    """

    def __init__(self, max_failed_logins: int, window: timedelta) -> None:
        self.addresses = Throttle(max_failed_logins * 4, window)
        self.accounts = Throttle(1, window)

    @staticmethod
    def pair(addr: str, staff_id: int) -> str:
        return f"{staff_id} {addr}"

    def address_blocked(self, addr: str, now: datetime) -> bool:
        return self.addresses.blocked(addr, now)

    def failed_on_account(self, addr: str, staff_id: int, now: datetime) -> bool:
        """``addr`` failed on the account ``staff_id`` within the window."""
        return self.accounts.blocked(self.pair(addr, staff_id), now)

    def failed(self, addr: str, staff_id: int | None, now: datetime) -> None:
        self.addresses.failed(addr, now)
        if staff_id is not None:
            self.accounts.failed(self.pair(addr, staff_id), now)

    def succeeded(self, addr: str, staff_id: int) -> None:
        self.addresses.succeeded(addr)
        self.accounts.succeeded(self.pair(addr, staff_id))
