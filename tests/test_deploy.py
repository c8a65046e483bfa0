"""Deployment files agree with the code: settings, commands, services."""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser
from storage.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>CNR_[A-Z0-9_]+)=(?P<value>.*)$")
#: Sample values for the variables the deployment files interpolate.
SAMPLE_VARS = {"PUBLIC_URL": "https://bot.example.fr", "POSTGRES_PASSWORD": "pw", "i": "8080"}

SETTING_NAMES = {f"CNR_{name.upper()}" for name in Settings.model_fields}


def env_example() -> list[tuple[str, str, bool]]:
    """(name, value, active) for each CNR_* line of .env.example (commented = inactive)."""
    out = []
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            out.append((match["name"], match["value"], match["comment"] is None))
    return out


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("CNR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


# --- .env.example -------------------------------------------------------------------------


def test_env_example_lists_exactly_the_settings() -> None:
    names = [name for name, _, _ in env_example()]
    assert len(names) == len(set(names)), "a setting is listed twice"
    assert set(names) - SETTING_NAMES == set(), "listed but not a setting"
    assert SETTING_NAMES - set(names) == set(), "settings missing from deploy/.env.example"


def test_env_example_defaults_are_the_real_defaults(clean_env: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    for name, value, active in env_example():
        if active or value == "":
            continue
        clean_env.setenv(name, value)
        field = name.removeprefix("CNR_").lower()
        assert getattr(Settings(), field) == getattr(defaults, field), name
        clean_env.delenv(name)


def test_env_example_values_are_valid(clean_env: pytest.MonkeyPatch) -> None:
    for name, value, _ in env_example():
        if value:
            clean_env.setenv(name, value)
    settings = Settings()
    assert settings.console_secure_cookies is True
    assert settings.webhook_path is not None
    assert settings.webhook_path.startswith("/tg/")  # what deploy/nginx.conf forwards


def test_secrets_are_not_given_empty_values() -> None:
    # An empty CNR_SECRET_KEY would be an empty (valid!) secret: secrets stay commented out.
    for name, value, active in env_example():
        if name in {"CNR_SECRET_KEY", "CNR_TELEGRAM_TOKEN", "CNR_WEBHOOK_SECRET"}:
            assert not active and value == "", name


# --- commands -----------------------------------------------------------------------------


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def interpolate(text: str) -> str:
    """${VAR}, ${VAR:?message} and %i replaced by sample values; ${VAR:-default} by its
    default."""

    def value(match: re.Match[str]) -> str:
        if match["op"] == "-":
            return match["default"]
        return SAMPLE_VARS.get(match["name"], "x")

    text = re.sub(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<default>[^}]*))?\}", value, text)
    return text.replace("%i", SAMPLE_VARS["i"])


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def compose_commands() -> list[tuple[str, list[str]]]:
    out = []
    for name, service in compose()["services"].items():
        if service.get("image") == "cnrbot:latest":
            out.append((f"compose:{name}", [interpolate(str(a)) for a in service["command"]]))
    return out


def systemd_commands() -> list[tuple[str, list[str]]]:
    out = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(unit, encoding="utf-8")
        argv = shlex.split(interpolate(parser["Service"]["ExecStart"]))
        assert argv[0] == "/opt/cnrbot/.venv/bin/cnrbot", unit.name
        out.append((f"systemd:{unit.name}", argv[1:]))
    return out


ALL_COMMANDS = compose_commands() + systemd_commands()


def test_the_expected_processes_are_deployed() -> None:
    first_words = {where: argv[:2] for where, argv in ALL_COMMANDS}
    assert first_words["compose:migrate"] == ["db", "upgrade"]
    assert first_words["compose:webhook"] == ["run", "--webhook"]
    assert first_words["compose:console"][0] == "console"
    assert first_words["systemd:cnrbot-webhook@.service"] == ["run", "--webhook"]
    assert first_words["systemd:cnrbot-console.service"][0] == "console"
    assert first_words["systemd:cnrbot-migrate.service"] == ["db", "upgrade"]


@pytest.mark.parametrize(("where", "argv"), ALL_COMMANDS, ids=[w for w, _ in ALL_COMMANDS])
def test_deployed_commands_parse_with_the_cli(where: str, argv: list[str]) -> None:
    """Every command the deployment runs is accepted by ``cnrbot``'s own parser."""
    assert argv[0] in subcommands(), f"{where}: no `cnrbot {argv[0]}` subcommand"
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `cnrbot {shlex.join(argv)}` is refused by the CLI ({exc})")
    assert callable(args.func)


def test_console_and_webhook_listeners_in_compose() -> None:
    services = compose()["services"]
    argv = dict(compose_commands())
    console = argv["compose:console"]
    webhook = argv["compose:webhook"]
    console_port = console[console.index("--port") + 1]
    webhook_port = webhook[webhook.index("--port") + 1]
    assert console_port != webhook_port
    assert "ports" not in services["console"], "the console must not be published"
    assert "ports" not in services["webhook"], "webhook workers are reached through nginx"
    proxy_ports = [interpolate(p) for p in services["proxy"]["ports"]]
    assert "443:443" in proxy_ports
    internal = [p for p in proxy_ports if p.endswith(":8443")]
    assert internal == ["127.0.0.1:8443:8443"], "the console's port binds to localhost by default"


def test_compose_database_and_migration_order() -> None:
    services = compose()["services"]
    db = services["db"]
    assert db["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("webhook", "console"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["env_file"] == ".env"
        url = services[name]["environment"]["CNR_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@db:5432/" in url
    assert "pgdata" in compose()["volumes"]


# --- Dockerfile and nginx ----------------------------------------------------------------


def test_dockerfile() -> None:
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    copied = {line.split()[1] for line in lines if line.startswith("COPY ")}
    for package in ("bot", "dialogs", "storage", "exporter", "moderation"):
        assert package in copied, f"package {package} not copied into the image"
    for name in copied:
        for part in name.split():
            assert (ROOT / part).exists(), f"COPY {part}: no such file in the repository"
    assert any(line.startswith("RUN pip install .") for line in lines)
    assert 'ENTRYPOINT ["cnrbot"]' in lines


def test_build_context_leaves_secrets_and_local_state_out() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for pattern in ("**/.env", "**/*.key", "**/*.db", "**/.venv", "**/.git"):
        assert pattern in ignored


def nginx_servers() -> list[str]:
    """The text of each top-level ``server { ... }`` block (comments removed)."""
    text = "\n".join(
        line.split("#", 1)[0]
        for line in (DEPLOY / "nginx.conf").read_text(encoding="utf-8").splitlines()
    )
    assert text.count("{") == text.count("}")
    blocks = []
    for match in re.finditer(r"^server\s*\{", text, flags=re.MULTILINE):
        depth, pos = 0, match.end() - 1
        for pos in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                break
        blocks.append(text[match.start() : pos + 1])
    return blocks


def test_nginx_routes_webhook_publicly_and_console_internally() -> None:
    servers = nginx_servers()
    public = [s for s in servers if re.search(r"listen 443 ssl;", s)]
    internal = [s for s in servers if "cnrbot_console" in s]
    assert len(public) == 1 and len(internal) == 1
    assert "location /tg/" in public[0] and "proxy_pass http://cnrbot_webhook;" in public[0]
    assert "cnrbot_console" not in public[0]
    assert "listen 8443 ssl;" in internal[0]
    assert "deny all;" in internal[0]
    assert "cnrbot_webhook" not in internal[0]
    for block in servers:
        if "ssl;" in block:
            assert "ssl_certificate " in block and "ssl_certificate_key " in block
        assert " combined;" not in block, "access logs must not record the secret path"
