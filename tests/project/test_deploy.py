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

ROOT = Path(__file__).resolve().parents[2]
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


#: What an operator generates for the secrets the example leaves empty.
FILLED_SECRETS = {
    "CNR_SECRET_KEY": "q8Zr1vKx-Jm3tWb7NpYc2Ld9HfSe4UaG",
    "CNR_WEBHOOK_SECRET": "Xw5Tn0Rb8Kq2Vy6Mz4Lc1Jd7Gh3Fs9Pa",
    "CNR_TELEGRAM_TOKEN": "123456:ABCdefGhIJKlmNoPQRstuVWXyz0123456",
}


def test_env_example_values_are_valid(clean_env: pytest.MonkeyPatch) -> None:
    for name, value, _ in env_example():
        if value:
            clean_env.setenv(name, value)
    for name, value in FILLED_SECRETS.items():
        clean_env.setenv(name, value)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.console_secure_cookies is True
    assert settings.webhook_path is not None
    assert settings.webhook_path.startswith("/tg/")  # what deploy/nginx.conf forwards


def test_the_example_without_its_secrets_refuses_to_start(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """Copied as it is, the example is refused, saying which secrets to fill in."""
    from pydantic import ValidationError

    for name, value, _ in env_example():
        if value:
            clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "refused in production" in message
    assert "CNR_SECRET_KEY is not set" in message
    assert "CNR_WEBHOOK_SECRET is not set" in message


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
#: The long-running processes, each on its own port.
LISTENERS = ("webhook", "console", "web")


def test_the_expected_processes_are_deployed() -> None:
    first_words = {where: argv[:2] for where, argv in ALL_COMMANDS}
    assert first_words["compose:migrate"] == ["db", "upgrade"]
    assert first_words["compose:webhook"] == ["run", "--webhook"]
    assert first_words["compose:console"][0] == "console"
    assert first_words["compose:web"][0] == "web"
    assert first_words["systemd:cnrbot-webhook@.service"] == ["run", "--webhook"]
    assert first_words["systemd:cnrbot-console.service"][0] == "console"
    assert first_words["systemd:cnrbot-migrate.service"] == ["db", "upgrade"]
    assert first_words["systemd:cnrbot-web@.service"][0] == "web"


@pytest.mark.parametrize(("where", "argv"), ALL_COMMANDS, ids=[w for w, _ in ALL_COMMANDS])
def test_deployed_commands_parse_with_the_cli(where: str, argv: list[str]) -> None:
    """Every command the deployment runs is accepted by ``cnrbot``'s own parser."""
    assert argv[0] in subcommands(), f"{where}: no `cnrbot {argv[0]}` subcommand"
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `cnrbot {shlex.join(argv)}` is refused by the CLI ({exc})")
    assert callable(args.func)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_console_webhook_and_web_listeners_in_compose() -> None:
    services = compose()["services"]
    argv = dict(compose_commands())
    ports = {name: option(argv[f"compose:{name}"], "--port") for name in LISTENERS}
    assert len(set(ports.values())) == len(ports), f"listeners share a port: {ports}"
    for name in LISTENERS:
        assert services[name]["expose"] == [ports[name]], name
    assert "ports" not in services["console"], "the console must not be published"
    assert "ports" not in services["webhook"], "webhook workers are reached through nginx"
    assert "ports" not in services["web"], "web chat workers are reached through nginx"
    proxy_ports = [interpolate(p) for p in services["proxy"]["ports"]]
    assert "443:443" in proxy_ports
    internal = [p for p in proxy_ports if p.endswith(":8443")]
    assert internal == ["127.0.0.1:8443:8443"], "the console's port binds to localhost by default"


def test_compose_web_chat_workers() -> None:
    services = compose()["services"]
    web = services["web"]
    port = option(dict(compose_commands())["compose:web"], "--port")
    assert option(dict(compose_commands())["compose:web"], "--listen") == "0.0.0.0"
    assert web["deploy"]["replicas"] == "${WEB_WORKERS:-2}"
    assert services["webhook"]["deploy"]["replicas"] == "${WEBHOOK_WORKERS:-2}"
    check = " ".join(web["healthcheck"]["test"])
    assert web["healthcheck"]["test"][0] == "CMD"
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert "web" in services["proxy"]["depends_on"]


def test_compose_database_and_migration_order() -> None:
    services = compose()["services"]
    db = services["db"]
    assert db["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in LISTENERS:
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


def nginx_text() -> str:
    """deploy/nginx.conf without its comments."""
    text = "\n".join(
        line.split("#", 1)[0]
        for line in (DEPLOY / "nginx.conf").read_text(encoding="utf-8").splitlines()
    )
    assert text.count("{") == text.count("}")
    return text


def nginx_blocks(text: str, opening: str) -> list[str]:
    """The text of each block of ``text`` whose opening matches the regex ``opening``
    (which ends with ``{``), from its opening to its closing brace."""
    blocks = []
    for match in re.finditer(opening, text, flags=re.MULTILINE):
        depth, pos = 0, match.end() - 1
        for pos in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                break
        blocks.append(text[match.start() : pos + 1])
    return blocks


def nginx_servers() -> list[str]:
    """The text of each top-level ``server { ... }`` block (comments removed)."""
    return nginx_blocks(nginx_text(), r"^server\s*\{")


def nginx_upstreams() -> dict[str, list[str]]:
    """Each upstream's servers (``name:port``)."""
    return {
        match[1]: re.findall(r"^\s*server\s+(\S+);", match[2], flags=re.MULTILINE)
        for match in re.finditer(r"^upstream\s+(\w+)\s*\{([^}]*)\}", nginx_text(), re.MULTILINE)
    }


def nginx_log_formats() -> dict[str, str]:
    """Each ``log_format``'s name and its format (the quoted strings joined)."""
    return {
        match[1]: "".join(re.findall(r"'([^']*)'", match[2]))
        for match in re.finditer(r"^log_format\s+(\w+)\s+([^;]*);", nginx_text(), re.MULTILINE)
    }


def nginx_size(value: str) -> int:
    """``64k`` -> 65536 (nginx's size units)."""
    match = re.fullmatch(r"(\d+)([kKmM]?)", value)
    assert match, value
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[match[2].lower()]


def the_server(servers: list[str], marker: str) -> str:
    found = [s for s in servers if marker in s]
    assert len(found) == 1, f"{len(found)} server blocks with {marker!r}"
    return found[0]


def test_nginx_routes_webhook_and_web_chat_publicly_and_console_internally() -> None:
    servers = nginx_servers()
    webhook = the_server(servers, "proxy_pass http://cnrbot_webhook;")
    web = the_server(servers, "proxy_pass http://cnrbot_web;")
    internal = the_server(servers, "proxy_pass http://cnrbot_console;")
    assert "listen 443 ssl http2;" in webhook and "location /tg/" in webhook
    assert "listen 443 ssl http2;" in web and "/tg/" not in web
    assert "listen 8443 ssl http2;" in internal and "deny all;" in internal
    for block, others in (
        (webhook, ("cnrbot_console", "cnrbot_web;")),
        (web, ("cnrbot_console", "cnrbot_webhook")),
        (internal, ("cnrbot_webhook", "cnrbot_web;")),
    ):
        for other in others:
            assert other not in block
    names = [re.search(r"server_name\s+([^;]+);", b)[1] for b in (webhook, web, internal)]  # type: ignore[index]
    assert len(set(names)) == 3, f"the three servers need their own names: {names}"
    for block in servers:
        if "ssl;" in block:
            assert "ssl_certificate " in block and "ssl_certificate_key " in block
        assert " combined;" not in block, "access logs must not record the secret path"


def test_nginx_upstreams_reach_each_listener_on_its_own_port() -> None:
    argv = dict(compose_commands())
    upstreams = nginx_upstreams()
    for name in LISTENERS:
        port = option(argv[f"compose:{name}"], "--port")
        assert upstreams[f"cnrbot_{name}"] == [f"{name}:{port}"], name


def test_nginx_web_chat_limits_requests_and_bodies() -> None:
    text = nginx_text()
    web = the_server(nginx_servers(), "proxy_pass http://cnrbot_web;")
    zones = {
        m[2]: (m[1], int(m[3]))
        for m in re.finditer(r"limit_req_zone\s+(\S+)\s+zone=(\w+):\w+\s+rate=(\d+)r/s;", text)
    }
    assert zones["cnrbot_web"][0] == "$binary_remote_addr", "a zone per client address"
    post_key, post_rate = zones["cnrbot_web_post"]
    assert post_rate < zones["cnrbot_web"][1], "POST is limited more strictly"
    key_map = re.search(
        r"map\s+\$request_method\s+" + re.escape(post_key) + r"\s*\{([^}]*)\}", text
    )
    assert key_map, f"{post_key} is the client address for POST only"
    assert re.search(r"^\s*POST\s+\$binary_remote_addr;", key_map[1], re.MULTILINE)
    assert re.search(r'^\s*default\s+"";', key_map[1], re.MULTILINE)
    # Every location that reaches the workers is limited; the pages' location POSTs too.
    locations = nginx_blocks(web, r"^\s*location\s+[^{]*\{")
    proxied = [loc for loc in locations if "proxy_pass http://cnrbot_web;" in loc]
    assert proxied
    for loc in proxied:
        assert re.search(r"limit_req zone=cnrbot_web burst=\d+", loc), loc.splitlines()[0]
    root = [loc for loc in proxied if re.match(r"\s*location\s+/\s*\{", loc)]
    assert root and re.search(r"limit_req zone=cnrbot_web_post burst=\d+", root[0])
    # Over the limit: 429 and a page in plain French.
    assert "limit_req_status 429;" in web
    page = re.search(r"error_page 429 (@\w+);", web)
    assert page, "a friendly page for 429"
    named = nginx_blocks(web, r"^\s*location\s+" + page[1] + r"\s*\{")
    assert len(named) == 1 and "return 429 '<!doctype html>" in named[0]
    assert '<html lang="fr">' in named[0] and "Merci de patienter" in named[0]
    assert "Retry-After" in named[0]
    # Bodies: the web chat's limit, kept in memory.
    body = nginx_size(re.search(r"client_max_body_size\s+(\w+);", web)[1])  # type: ignore[index]
    assert body == Settings().web_max_body_bytes
    buffer = nginx_size(re.search(r"client_body_buffer_size\s+(\w+);", web)[1])  # type: ignore[index]
    assert buffer >= body, "a body is never written to a temporary file"
    assert "proxy_max_temp_file_size 0;" in web
    # The workers learn the client's address and scheme from this proxy only.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in web
    assert re.search(r"proxy_set_header X-Forwarded-Proto (\$scheme|https);", web)
    assert "X-Frame-Options" not in web, "framing is the workers' CSP (CNR_WEB_FRAME_ANCESTORS)"


def test_nginx_compresses_static_files_only() -> None:
    web = the_server(nginx_servers(), "proxy_pass http://cnrbot_web;")
    static = nginx_blocks(web, r"^\s*location\s+/static/\s*\{")
    assert len(static) == 1 and "gzip on;" in static[0]
    assert web.count("gzip on;") == 1, "pages (a form token beside the citizen's text) are not"
    types = re.search(r"gzip_types([^;]*);", static[0])[1].split()  # type: ignore[index]
    assert "text/css" in types and "text/html" not in types
    assert "gzip on;" not in nginx_text().replace(static[0], "")


#: What a log must never record of a citizen's request (bodies: nowhere).
QUERY_VARIABLES = ("$request ", '$request"', "$request_uri", "$args", "$query_string", "$arg_")
CITIZEN_VARIABLES = (
    *QUERY_VARIABLES,
    "$remote_addr",
    "$binary_remote_addr",
    "$http_x_forwarded_for",
    "$http_referer",
    "$http_user_agent",
    "$http_cookie",
    "$uri",
)


def test_nginx_logs_keep_citizens_data_out() -> None:
    formats = nginx_log_formats()
    for name, fmt in formats.items():
        assert "$request_body" not in fmt, name
    for block in nginx_servers():
        logs = re.findall(r"^\s*access_log\s+([^;]+);", block, re.MULTILINE)
        assert logs, "every server names its access log (nginx's default records query strings)"
        for log in logs:
            if log.strip() == "off":
                continue
            _path, fmt_name = log.split()
            fmt = formats[fmt_name] + " "
            for variable in QUERY_VARIABLES:
                assert variable not in fmt, f"{fmt_name} records the query string ({variable})"
            if "cnrbot_web;" in block:
                for variable in CITIZEN_VARIABLES:
                    assert variable not in fmt, f"the web chat's log records {variable}"
    web = the_server(nginx_servers(), "proxy_pass http://cnrbot_web;")
    assert re.search(r"error_log\s+\S+\s+crit;", web), "error messages name the client"
    assert "$request_body" not in nginx_text()


def test_dockerfile_exposes_every_listener() -> None:
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    exposed = {p for line in lines if line.startswith("EXPOSE ") for p in line.split()[1:]}
    argv = dict(compose_commands())
    assert exposed == {option(argv[f"compose:{name}"], "--port") for name in LISTENERS}


# --- systemd ----------------------------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name, encoding="utf-8")
    return parser


#: [Service] settings that are not about confinement.
NOT_HARDENING = {"Type", "ExecStart", "Restart", "RestartSec", "KillSignal", "TimeoutStopSec"}


def test_web_chat_unit_is_at_least_as_hardened_as_the_webhook_unit() -> None:
    webhook = unit("cnrbot-webhook@.service")
    web = unit("cnrbot-web@.service")
    for key, value in webhook["Service"].items():
        if key not in NOT_HARDENING:
            assert web["Service"].get(key) == value, key
    assert web["Unit"]["Requires"] == "cnrbot-migrate.service"
    assert "cnrbot-migrate.service" in web["Unit"]["After"]
    argv = shlex.split(interpolate(web["Service"]["ExecStart"]))
    assert argv[1:] == ["web", "--listen", "127.0.0.1", "--port", SAMPLE_VARS["i"]]
    assert web["Service"]["ExecStart"].endswith("--port %i"), "one instance per port"


def test_systemd_instances_never_share_a_port() -> None:
    """The instance ports the units' comments suggest, and the console's, are distinct; nginx
    lists the web chat's."""
    suggested = {
        name: set(
            re.findall(
                rf"cnrbot-{name}@(\d+)",
                (DEPLOY / "systemd" / f"cnrbot-{name}@.service").read_text(encoding="utf-8"),
            )
        )
        for name in ("web", "webhook")
    }
    console = {option(dict(systemd_commands())["systemd:cnrbot-console.service"], "--port")}
    assert suggested["web"] and suggested["webhook"]
    assert not suggested["web"] & suggested["webhook"]
    assert not (suggested["web"] | suggested["webhook"]) & console
    nginx = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    for port in suggested["web"]:
        assert f"127.0.0.1:{port}" in nginx, port


# --- compose-only variables and the image's contents ----------------------------------------------


def test_compose_variables_are_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", (DEPLOY / "compose.yaml").read_text(encoding="utf-8")))
    text = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    compose_only = text.split("# --- storage", 1)[0]
    listed = set(re.findall(r"^(\w+)=", compose_only, re.MULTILINE))
    # and the project's name, which compose reads from the same file
    assert used | {"COMPOSE_PROJECT_NAME"} == listed, (
        "deploy/.env.example's compose-only section lists what compose uses"
    )
    assert "WEB_WORKERS" in listed


def test_the_image_installs_every_static_file() -> None:
    """The image runs ``pip install .``: every file the web pages serve must be package data."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    missing = sorted(
        str(path.relative_to(ROOT))
        for package in ("bot", "moderation")
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and {"static", "templates"} & set(path.relative_to(ROOT).parts)
        and not any(fnmatch.fnmatch(path.name, p) for p in patterns)
        and path.name not in ("README.md",)
    )
    assert missing == [], f"left out of the image: {missing[:10]}"
