"""Helpers of the proof-of-work tests: what a browser sends, solved with the altcha library's
own solver, and what a forger or a fuzzer sends instead."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import altcha

from bot.web.proof_of_work import MAX_PAYLOAD_CHARS, ProofOfWork


def solve(challenge: dict[str, Any]) -> dict[str, Any]:
    """What the widget puts in the form, as a dict (see :func:`encode`)."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed)
    assert solution is not None
    return altcha.Payload(parsed, solution).to_dict()


def encode(payload: object) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def solved(pow: ProofOfWork, now: datetime | None = None) -> str:
    return encode(solve(pow.challenge(now)))


def tampered(pow: ProofOfWork) -> tuple[str, dict[str, str]]:
    """A valid proof and variants of it, each changed in one way."""
    good = solve(pow.challenge())
    cases: dict[str, Any] = {}

    def variant(name: str, change: Any) -> None:
        payload = json.loads(json.dumps(good))
        change(payload)
        cases[name] = encode(payload)

    parameters = "challenge", "parameters"

    def set_in(path: tuple[str, ...], key: str, value: Any) -> Any:
        def change(payload: dict[str, Any]) -> None:
            target = payload
            for step in path:
                target = target[step]
            target[key] = value

        return change

    counter = good["solution"]["counter"]
    derived = good["solution"]["derivedKey"]
    p = good["challenge"]["parameters"]
    variant("counter+1", set_in(("solution",), "counter", counter + 1))
    variant("counter as text", set_in(("solution",), "counter", str(counter)))
    variant("counter as float", set_in(("solution",), "counter", counter + 0.0))
    variant("counter beyond", set_in(("solution",), "counter", 2**40))
    variant("negative counter", set_in(("solution",), "counter", -1))
    variant("derived key", set_in(("solution",), "derivedKey", "0" * 64))
    variant("derived key upper", set_in(("solution",), "derivedKey", derived.upper()))
    variant("derived key short", set_in(("solution",), "derivedKey", derived[:32]))
    variant("no solution", lambda d: d.pop("solution"))
    variant("later expiry", set_in(parameters, "expiresAt", p["expiresAt"] + 3600))
    variant("expiry as text", set_in(parameters, "expiresAt", str(p["expiresAt"])))
    variant("no expiry", lambda d: d["challenge"]["parameters"].pop("expiresAt"))
    variant("easier prefix", set_in(parameters, "keyPrefix", p["keyPrefix"][:2]))
    variant("cost", set_in(parameters, "cost", 2))
    variant("algorithm", set_in(parameters, "algorithm", "PBKDF2/SHA-256"))
    variant("nonce", set_in(parameters, "nonce", "00" * 16))
    variant("extra data", set_in(parameters, "data", {"x": 1}))
    variant("signature", set_in(("challenge",), "signature", "0" * 64))
    variant("no signature", lambda d: d["challenge"].pop("signature"))
    variant("signature as list", set_in(("challenge",), "signature", [1]))
    variant("parameters as list", set_in(("challenge",), "parameters", []))
    return encode(good), cases


GARBAGE: list[Any] = [
    None,
    "",
    " ",
    "altcha",
    "!!!!",
    "====",
    "e30",  # "{}" without padding
    "\x00",
    "\ud800",
    "é" * 100,
    "A" * (MAX_PAYLOAD_CHARS + 4),
    "A" * 1_000_000,
    encode(None),
    encode([]),
    encode("text"),
    encode(12),
    encode({}),
    encode({"challenge": 1, "solution": 2}),
    encode({"challenge": {}, "solution": {}}),
    encode({"challenge": {"parameters": {}, "signature": "ab" * 32}, "solution": {}}),
    base64.b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
    base64.b64encode(b"[" * 3000).decode(),  # deeply nested
    base64.b64encode(b'{"a": NaN}').decode(),
    base64.b64encode(b'{"challenge": {"parameters": {"expiresAt": 1e999}}}').decode(),
    12,
    b"bytes",
    ["list"],
]
