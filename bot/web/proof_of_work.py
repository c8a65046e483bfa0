"""A self-hosted proof-of-work (ALTCHA) for the web chat's browsers with JavaScript.

The widget (vendored in ``bot/web/static/altcha/``, see its README.md) fetches a challenge from
the web chat (:meth:`ProofOfWork.challenge`), finds its solution in web workers, and puts the
solution, base64 JSON, in the hidden form field ``altcha``; the web chat hands that field to
:meth:`ProofOfWork.verify`.

Challenges use ALTCHA's v2 protocol (the ``altcha`` library's main API, the widget's native
one) in its deterministic form: the server picks a secret counter between 0 and
``settings.altcha_max_number`` and publishes half of the key it derives (one SHA-256, cost 1),
so the browser must try the counters one by one, ``altcha_max_number / 2`` hashes on average,
the same work as ALTCHA v1's "largest number" that the setting is named after. The challenge's
parameters (with its expiry, ``settings.altcha_expires``) are signed with an HMAC key derived
from the master secret under its own label (:data:`ALTCHA_INFO`): no state is kept for an
unsolved challenge.

A solved challenge is accepted once: its signature is remembered until it expires through the
rate limiter's store (:meth:`storage.ratelimit.RateLimiter.once`), in the database on
PostgreSQL, so a replay to another worker is refused too. On SQLite (one worker, memory
counters) a restart forgets those marks: a proof could then be used a second time within its
expiry, which the per-address limits still bound.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import altcha

from storage.identity import derive_key
from storage.ratelimit import RateLimiter
from storage.settings import Settings

__all__ = ["ALGORITHM", "ALTCHA_INFO", "FIELD", "ProofOfWork"]

log = logging.getLogger(__name__)

#: HKDF label of the key that signs the challenges.
ALTCHA_INFO = b"cnr-sante-bot/altcha/v1"
#: The only algorithm issued and accepted (the widget's ``workers/sha.js``).
ALGORITHM = "SHA-256"
#: The form field the widget fills (its ``name`` attribute's default).
FIELD = "altcha"
#: A genuine payload is about 600 characters; anything much longer is not one.
MAX_PAYLOAD_CHARS = 4_096
#: A used challenge is remembered this long after its expiry (clocks of workers differ a little).
REPLAY_MARGIN = timedelta(minutes=5)
#: The limiter's name for used challenges.
USED = "altcha-used"

_HEX = re.compile(r"(?:[0-9a-f]{2})+")


class ProofOfWork:
    """Issues and checks ALTCHA challenges; see the module's docstring."""

    def __init__(self, settings: Settings, limiter: RateLimiter) -> None:
        self._key = derive_key(settings.master_secret(), ALTCHA_INFO)
        self._limiter = limiter
        self.max_number = settings.altcha_max_number
        self.expires = settings.altcha_expires

    def challenge(self, now: datetime | None = None) -> dict[str, Any]:
        """A new signed challenge: the JSON the widget fetches (serve it with
        ``Cache-Control: no-store``)."""
        now = now or datetime.now(UTC)
        issued = altcha.create_challenge(
            ALGORITHM,
            1,
            counter=secrets.randbelow(self.max_number + 1),
            expires_at=now + self.expires,
            hmac_secret=self._key,
        )
        return issued.to_dict()

    async def verify(self, payload: str | None, now: datetime | None = None) -> bool:
        """True when ``payload`` (the form field ``altcha``) solves a challenge of ours that
        has not expired and was not used before; it is then used. Anything else (missing,
        malformed, tampered, expired, replayed) is False, never an exception."""
        now = now or datetime.now(UTC)
        try:
            checked = self._check(payload, now)
        except Exception:  # a bug or a library surprise must not let a request fail
            log.exception("proof-of-work check failed unexpectedly")
            return False
        if checked is None:
            return False
        signature, expires_at = checked
        return await self._limiter.once(USED, signature, expires_at + REPLAY_MARGIN, now)

    def _check(self, payload: object, now: datetime) -> tuple[str, datetime] | None:
        """The challenge's signature and expiry when ``payload`` is a valid solution."""
        if not isinstance(payload, str) or not 0 < len(payload) <= MAX_PAYLOAD_CHARS:
            return None
        try:
            data = json.loads(base64.b64decode(payload, validate=True))
        except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
        if not isinstance(data, dict):
            return None
        challenge, solution = data.get("challenge"), data.get("solution")
        if not isinstance(challenge, dict) or not isinstance(solution, dict):
            return None
        parameters, signature = challenge.get("parameters"), challenge.get("signature")
        if not isinstance(parameters, dict) or not _is_hex(signature, 64):
            return None
        expires = parameters.get("expiresAt")
        if type(expires) is not int or expires <= now.timestamp():
            return None
        if parameters.get("algorithm") != ALGORITHM or parameters.get("cost") != 1:
            return None
        for name in ("nonce", "salt", "keyPrefix"):
            if not _is_hex(parameters.get(name)):
                return None
        counter, derived_key = solution.get("counter"), solution.get("derivedKey")
        if type(counter) is not int or not 0 <= counter <= self.max_number:
            return None
        if not _is_hex(derived_key, 64):
            return None
        try:
            parsed = altcha.Payload.from_dict(data)
        except (KeyError, TypeError, ValueError):
            return None
        result = altcha.verify_solution(parsed, self._key)
        if not result.verified:
            log.debug(
                "proof-of-work refused (expired=%s, signature=%s, solution=%s)",
                result.expired,
                result.invalid_signature,
                result.invalid_solution,
            )
            return None
        return str(signature), datetime.fromtimestamp(expires, UTC)


def _is_hex(value: object, length: int | None = None) -> bool:
    return (
        isinstance(value, str)
        and (length is None or len(value) == length)
        and _HEX.fullmatch(value) is not None
    )
