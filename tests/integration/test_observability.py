"""Observability (issue 13, point 1): ``/healthz`` and ``/readyz`` on every listener (the
Telegram webhook, the web chat, the console), through a database outage and back; Prometheus
metrics on their own port after real conversations, with no text nor identity in them; JSON
log lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from bot.metrics import MetricsServer, step_label
from dialogs.flow import STATES
from storage.db import create_engine, session_factory, upgrade
from storage.health import NOT_MIGRATED, UNAVAILABLE
from storage.settings import Settings
from tests.outage import TcpProxy, sqlite_locked
from tests.telegram_helpers import Citizen, contribute_fr, running_bot, settle
from tests.web.test_web_cli import free_port, web_env
from tests.web_helpers import WebCitizen, contribute, running_web

CANARY_ID = 7_301_994_777
CANARY_TEXT = "Canari-Metrique-5150 rien compris"

Outage = Callable[[], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def outage_ready(settings: Settings) -> AsyncIterator[tuple[Settings, Outage]]:
    """Settings to run a listener on, and an outage of its database: on SQLite another writer
    holds the file's lock; on PostgreSQL the connection is cut (a relay the test controls)."""
    if settings.database_url.startswith("sqlite"):

        @contextlib.asynccontextmanager
        async def locked() -> AsyncIterator[None]:
            async with sqlite_locked(settings):
                yield

        yield settings, locked
        return
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    @contextlib.asynccontextmanager
    async def cut() -> AsyncIterator[None]:
        await proxy.cut()
        try:
            yield
        finally:
            await proxy.start()  # the database is back, at the same address

    try:
        yield settings.model_copy(update={"database_url": proxied}), cut
    finally:
        with contextlib.suppress(AssertionError):
            await proxy.cut()


async def get(http: ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as r:
        return r.status, await r.text()


async def check_health(base: str, outage: Outage) -> None:
    """Alive and ready; during the outage alive and not ready (a short reason, nothing else);
    ready again after it."""
    async with ClientSession() as http:
        assert await get(http, base + "/healthz") == (200, "ok")
        assert await get(http, base + "/readyz") == (200, "ready")
        async with outage():
            assert await get(http, base + "/healthz") == (200, "ok")
            status, text = await get(http, base + "/readyz")
            assert (status, text) == (503, UNAVAILABLE)
        for _ in range(50):  # the pool notices the connections cut and opens new ones
            status, text = await get(http, base + "/readyz")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert (status, text) == (200, "ready")


# --- /healthz and /readyz -------------------------------------------------------------------


async def test_webhook_listener_health_and_readiness(db_settings: Settings) -> None:
    async with (
        outage_ready(db_settings) as (settings, outage),
        running_bot(settings, mode="webhook") as bot,
    ):
        base = bot.url.split("/telegram/", 1)[0]
        await check_health(base, outage)


async def test_web_chat_health_and_readiness(db_settings: Settings) -> None:
    async with outage_ready(db_settings) as (settings, outage), running_web(settings) as chat:
        await check_health(chat.url.rstrip("/"), outage)


@contextlib.asynccontextmanager
async def console(settings: Settings, *, migrate: bool = True) -> AsyncIterator[str]:
    from moderation.app import create_app

    engine = create_engine(settings)
    if migrate:
        await upgrade(engine)
    server = TestServer(create_app(settings, session_factory(engine)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_console_health_and_readiness_need_no_session(db_settings: Settings) -> None:
    async with outage_ready(db_settings) as (settings, outage), console(settings) as base:
        async with ClientSession() as http:
            status, _ = await get(http, base + "/contributions")
            assert status == 303, "the console's pages still need a session"
        await check_health(base, outage)


async def test_readiness_wants_the_current_schema(sqlite_settings: Settings) -> None:
    async with console(sqlite_settings, migrate=False) as base, ClientSession() as http:
        assert await get(http, base + "/healthz") == (200, "ok")
        assert await get(http, base + "/readyz") == (503, NOT_MIGRATED)


# --- metrics ----------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def step_count(scrape: dict[Any, float], channel: str) -> float:
    return sum(
        v
        for (name, labels), v in scrape.items()
        if name == "cnrbot_step_seconds_count" and ("channel", channel) in labels
    )


async def scrape(port: int) -> tuple[str, dict[Any, float]]:
    async with (
        ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as r,
    ):
        assert r.status == 200
        assert r.content_type == "text/plain"
        text = await r.text()
    return text, samples(text)


def assert_nothing_personal(text: str, *canaries: str) -> None:
    for canary in canaries:
        assert canary not in text, canary
    for line in text.splitlines():
        if line.startswith("cnrbot_") and 'step="' in line:
            step = line.split('step="', 1)[1].split('"', 1)[0]
            assert step in (*STATES, "none", "other"), line


async def test_metrics_after_a_telegram_conversation(db_settings: Settings) -> None:
    settings = db_settings.model_copy(update={"metrics_port": 0})
    async with running_bot(settings, mode="webhook") as bot:
        metrics = MetricsServer(settings, lambda: bot.service.engine)
        port = await metrics.start()
        assert port
        try:
            _, before = await scrape(port)
            c = Citizen(bot.api, bot.api.user(CANARY_ID))
            await c.say("Bonjour")
            await c.expect(button="consent:yes")
            await c.press("consent:yes")
            await c.expect(button="t:OISE")
            await c.say(CANARY_TEXT)  # typed at a button step
            await c.expect(button="t:OISE")
            await settle(bot)
            # Telegram delivers an update again (its answer was lost): a duplicate
            update = dict(bot.api.history[max(bot.api.history)])
            await bot.api.push_raw(update)
            await settle(bot)
            await contribute_fr(Citizen(bot.api, bot.api.user(CANARY_ID + 1)))
            await settle(bot)
            text, after = await scrape(port)
        finally:
            await metrics.stop()
    done = value(after, "cnrbot_messages_total", channel="telegram", outcome="done")
    assert done - value(before, "cnrbot_messages_total", channel="telegram", outcome="done") >= 10
    dup = "cnrbot_messages_total"
    assert value(after, dup, channel="telegram", outcome="duplicate") > value(
        before, dup, channel="telegram", outcome="duplicate"
    )
    assert step_count(after, "telegram") - step_count(before, "telegram") >= 10
    assert value(after, "cnrbot_step_seconds_count", channel="telegram", step="done") >= 1
    assert value(after, "cnrbot_contributions", status="pending") == 1
    assert value(after, "cnrbot_moderation_backlog") == 1
    assert value(after, "cnrbot_database_up") == 1
    assert ("cnrbot_outbox_backlog", ()) in after
    assert_nothing_personal(text, str(CANARY_ID), CANARY_TEXT, "Canari", "Camille")


async def test_metrics_after_a_web_conversation(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"metrics_port": 0})
    async with running_web(settings) as chat:
        metrics = MetricsServer(settings, lambda: chat.channel.service.engine)
        port = await metrics.start()
        assert port
        try:
            _, before = await scrape(port)
            async with WebCitizen(chat) as citizen:
                await citizen.open()
                await citizen.press("consent:yes")
                await citizen.write(CANARY_TEXT)  # typed at a button step
                form = {**citizen.form.fields, "choice": "t:OISE"}
                await citizen.post(form)
                await citizen.post(form)  # the same form sent twice: applied once
                await citizen.press("th:1")
                assert citizen.state == "need"
                token = next(iter(citizen.session.cookie_jar)).value
            async with WebCitizen(chat) as other:
                await contribute(other)
            text, after = await scrape(port)
        finally:
            await metrics.stop()
    name = "cnrbot_messages_total"
    assert (
        value(after, name, channel="web", outcome="done")
        - value(before, name, channel="web", outcome="done")
        >= 10
    )
    assert value(after, name, channel="web", outcome="duplicate") > value(
        before, name, channel="web", outcome="duplicate"
    )
    assert step_count(after, "web") - step_count(before, "web") >= 10
    assert value(after, "cnrbot_contributions", status="pending") == 1
    assert value(after, "cnrbot_database_up") == 1
    assert_nothing_personal(text, token, CANARY_TEXT, "Canari")


async def test_metrics_gauges_during_an_outage(sqlite_settings: Settings) -> None:
    """The database out of reach: the scrape still answers, saying so."""
    settings = sqlite_settings.model_copy(update={"metrics_port": 0})
    engine = create_engine(settings)
    await upgrade(engine)
    metrics = MetricsServer(settings, lambda: engine)
    port = await metrics.start()
    assert port
    try:
        _, up = await scrape(port)
        assert value(up, "cnrbot_database_up") == 1
        await engine.dispose()
        path = Path(settings.database_url.split("///", 1)[1])
        await asyncio.to_thread(path.unlink)
        await asyncio.to_thread(path.mkdir)  # a directory where the file was: cannot open
        _, down = await scrape(port)
        assert value(down, "cnrbot_database_up") == 0
    finally:
        await metrics.stop()
        await engine.dispose()


def test_labels_are_bounded() -> None:
    assert step_label("review") == "review"
    assert step_label(None) == "none"
    assert step_label(CANARY_TEXT) == "other"


def test_no_metrics_listener_unless_asked(sqlite_settings: Settings) -> None:
    assert sqlite_settings.metrics_port is None
    assert asyncio.run(MetricsServer(sqlite_settings, lambda: None).start()) is None


# --- the commands: metrics listener and JSON logs ---------------------------------------------


async def test_web_command_json_logs_and_metrics(tmp_path: Path) -> None:
    """``cnrbot -v web`` with CNR_LOG_FORMAT=json: every line on stderr is a JSON object (time,
    level, logger, message); its metrics listener answers on CNR_METRICS_PORT."""
    port, metrics_port = free_port(), free_port()
    env = web_env(tmp_path)
    env.update(CNR_LOG_FORMAT="json", CNR_METRICS_PORT=str(metrics_port))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "-v",
        "web",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not any("web chat on" in line for line in lines):
                line = (await proc.stderr.readline()).decode()
                assert line, "cnrbot web ended before listening: " + "".join(lines)
                lines.append(line)
        url = f"http://127.0.0.1:{port}/"
        async with ClientSession() as http:
            assert (await get(http, url + "healthz"))[0] == 200
            assert (await get(http, url + "readyz"))[0] == 200
            assert (await get(http, url + "nulle-part"))[0] == 404
        _, metrics = await scrape(metrics_port)
        assert value(metrics, "cnrbot_database_up") == 1
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = await proc.stderr.read()
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines += rest.decode().splitlines(keepends=True)
    records = [json.loads(line) for line in lines if line.strip()]
    assert all(isinstance(r, dict) for r in records)
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    messages = [r["message"] for r in records]
    assert any("metrics on http://127.0.0.1:" in m for m in messages)
    assert any("web chat on" in m for m in messages) and "cnrbot: stopped" in messages
    assert any(r["logger"] == "aiohttp.access" for r in records), "the access log, as JSON"


def test_json_formatter_gives_the_exception_class_not_its_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from bot.logs import json_formatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("bot.test_observability")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(CANARY_TEXT)
        except ValueError:
            logger.exception("handling a message failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    err = capsys.readouterr().err
    record = json.loads(err)
    assert record["level"] == "ERROR" and record["logger"] == "bot.test_observability"
    assert record["message"] == "handling a message failed"
    assert record["exc_class"] == "ValueError"
    assert "test_observability.py" in record["traceback"]
    assert CANARY_TEXT not in err


def test_log_format_setting_is_read_for_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.settings import LogSettings

    monkeypatch.setenv("CNR_LOG_FORMAT", "json")
    assert LogSettings().log_format == "json"
    assert Settings().log_format == "json"
    monkeypatch.setenv("CNR_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError):
        LogSettings()


# --- deployment -------------------------------------------------------------------------------


def test_deployment_starts_the_metrics_listeners_on_internal_ports_only() -> None:
    import configparser

    from tests.project.test_deploy import DEPLOY, compose, nginx_servers, option, systemd_commands

    systemd = dict(systemd_commands())

    services = compose()["services"]
    for name in ("webhook", "web", "console"):
        env = services[name]["environment"]
        port = str(env["CNR_METRICS_PORT"])
        assert port.isdigit(), name
        assert port not in [str(p) for p in services[name].get("expose", [])], "not advertised"
        assert "ports" not in services[name], "never published"
    published = " ".join(str(p) for p in services["proxy"]["ports"])
    assert str(services["web"]["environment"]["CNR_METRICS_PORT"]) not in published
    for unit in ("cnrbot-webhook@.service", "cnrbot-web@.service", "cnrbot-console.service"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(DEPLOY / "systemd" / unit, encoding="utf-8")
        line = parser["Service"]["Environment"]
        # each process its own port: a template's instance 1 + its listener's port (%i), the
        # console 1 + 8081 (no instance can listen on the console's port)
        expected = "1%i" if "@" in unit else "1" + option(systemd[f"systemd:{unit}"], "--port")
        assert line == f"CNR_METRICS_PORT={expected}", unit
    for server in nginx_servers():
        assert "9100" not in server and "1808" not in server
        for location in re.findall(r"location\s+=?\s*/metrics\s*\{([^}]*)\}", server):
            assert "return 404;" in location and "proxy_pass" not in location
