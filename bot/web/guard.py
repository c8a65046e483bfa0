"""The web chat's abuse policy: which limits apply to what, on top of :mod:`storage.ratelimit`.

* every POST: at most ``web_rate_per_address`` per minute from one client address;
* every message of a citizen: at most ``web_rate_per_participant`` per minute;
* a citizen's first contribution: free with a valid, unused proof-of-work (a browser with
  JavaScript solved an ALTCHA challenge, :mod:`bot.web.proof_of_work`); without one (no
  JavaScript, or a script skipping the challenge, or a bad or replayed proof) the stricter
  limits apply: ``web_rate_unverified_per_address`` per address per hour, and
  ``web_rate_unverified_total`` for the whole site per hour. A person without JavaScript still
  gets through; a script gains nothing by skipping the challenge.

An IPv6 client is counted by its /64 network (one subscriber usually holds a whole /64, and
could otherwise change address at every request); an IPv4 client by its address. Finding the
client address behind the reverse proxy is the web chat's business (it reuses the console's).

Each method returns a :class:`~storage.ratelimit.Verdict`: when refused, answer 429 with
``Retry-After: verdict.retry_after``. Nothing here stores an address or a key in clear (see
:mod:`storage.ratelimit`).
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta

from bot.web.proof_of_work import ProofOfWork
from storage.ratelimit import Limit, RateLimiter, Verdict
from storage.settings import Settings

__all__ = ["Guard", "address_key"]

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
#: The limiter's names of the limits (the readable part of their counters).
PER_ADDRESS = "web-address"
PER_PARTICIPANT = "web-participant"
UNVERIFIED_PER_ADDRESS = "web-unverified-address"
UNVERIFIED_TOTAL = "web-unverified-total"
PASSED = Verdict(True, 0, 0)


class Guard:
    """The limits of the web chat (see the module's docstring)."""

    def __init__(self, settings: Settings, limiter: RateLimiter, pow: ProofOfWork) -> None:
        self.settings = settings
        self.limiter = limiter
        self.pow = pow

    async def request(
        self, address: str, participant_key: str | None = None, now: datetime | None = None
    ) -> Verdict:
        """Every POST from ``address``; with the citizen's ``participant_key`` (a message),
        their per-minute limit is counted too, in the same round trip."""
        limits = [
            Limit(PER_ADDRESS, address_key(address), self.settings.web_rate_per_address, MINUTE)
        ]
        if participant_key is not None:
            limits.append(self._participant(participant_key))
        return self._log(Verdict.strictest(await self.limiter.hit_many(limits, now)), PER_ADDRESS)

    async def message(self, participant_key: str, now: datetime | None = None) -> Verdict:
        """Every message of a citizen."""
        (verdict,) = await self.limiter.hit_many([self._participant(participant_key)], now)
        return self._log(verdict, PER_PARTICIPANT)

    async def first_contribution(
        self, address: str, proof: str | None, now: datetime | None = None
    ) -> Verdict:
        """A citizen's first contribution, with the form field ``altcha`` as ``proof``.

        A valid proof passes with ``Verdict(True, 0, 0)`` (nothing counted); anything else is
        counted against the hourly no-proof limits."""
        if proof and await self.pow.verify(proof, now):
            return PASSED
        per_address = await self.limiter.hit(
            UNVERIFIED_PER_ADDRESS,
            address_key(address),
            self.settings.web_rate_unverified_per_address,
            HOUR,
            now,
        )
        if not per_address.allowed:
            # not counted in the site's total: one address cannot use up everybody's share
            return self._log(per_address, UNVERIFIED_PER_ADDRESS)
        total = await self.limiter.hit(
            UNVERIFIED_TOTAL, "", self.settings.web_rate_unverified_total, HOUR, now
        )
        return self._log(total, UNVERIFIED_TOTAL)

    def _participant(self, participant_key: str) -> Limit:
        return Limit(
            PER_PARTICIPANT, participant_key, self.settings.web_rate_per_participant, MINUTE
        )

    @staticmethod
    def _log(verdict: Verdict, name: str = "") -> Verdict:
        # debug only: a flood would otherwise flood the logs too (never an address or a key)
        if not verdict.allowed:
            log.debug("web chat limit %s reached, retry after %d s", name, verdict.retry_after)
        return verdict


def address_key(address: str) -> str:
    """What a client address is counted by: an IPv6 address's /64 network, an IPv4 address
    (also when mapped in IPv6); anything else as it is (it is only hashed)."""
    try:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((ip.packed, 64), strict=False))
        return str(ip)
    except ValueError:
        return address
