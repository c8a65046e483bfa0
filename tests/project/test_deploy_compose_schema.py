"""deploy/compose.yaml is a valid Compose file: validated against the Compose Specification's
own JSON schema (vendored from compose-spec/compose-spec, Apache-2.0: tests/data/
compose-spec.json and .LICENSE), after the variables are filled in as docker compose would
(with the values of deploy/.env.example). ``.ci/run`` also runs ``docker compose config`` when
the Docker client has the compose plugin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = jsonschema.Draft7Validator(
    json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
)


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / "deploy" / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def _interpolated(text: str, env: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name, op, default = m["name"], m["op"], m["default"]
        if name in env and env[name] != "":
            return env[name]
        if op == "?":
            raise AssertionError(f"{name} is required by compose.yaml: {default}")
        return default or ""

    return re.sub(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<default>[^}]*))?\}", value, text)


def _compose(env: dict[str, str]) -> Any:
    text = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(_interpolated(text, env))


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    data = _compose(_env_example())
    VALIDATOR.validate(data)
    assert {"db", "migrate", "webhook", "web", "console"} <= set(data["services"])


def test_the_validation_catches_a_broken_compose_file() -> None:
    data = _compose(_env_example())
    data["services"]["web"]["restart"] = ["unless-stopped"]  # a list where a string goes
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(data)
    data = _compose(_env_example())
    data["services"]["web"]["deploy_typo"] = {}
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(data)


def test_a_missing_required_variable_is_said() -> None:
    env = {k: v for k, v in _env_example().items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        _compose(env)
