"""Prometheus metrics (``prometheus-client``), served on a port of their own, never public.

Every metric is defined here. Labels take values from short, fixed lists (channels, outcomes,
dialog states, exception classes, statuses): never a text, an identity, an address or anything
a citizen chooses.

================================  =========  ====================================================
``cnrbot_messages_total``         counter    citizens' messages by ``channel`` and ``outcome``:
                                             ``done``, ``failed`` (the program failed on it),
                                             ``duplicate`` (already recorded or applied: a
                                             re-delivery, a form sent twice), ``resumed`` (shown
                                             again after a crash)
``cnrbot_step_seconds``           histogram  time to handle one message (the dialog's
                                             transaction and the replies), by ``channel`` and
                                             ``step`` (the state it led to; ``none`` without a
                                             dialog step)
``cnrbot_errors_total``           counter    errors by ``kind`` (the exception's class) and
                                             ``where`` (``processor``, ``notifier``,
                                             ``telegram``, ``web``)
``cnrbot_notices_total``          counter    pushes of the outbox by ``channel`` and
                                             ``outcome`` (``sent``, ``pending``, ``failed``)
``cnrbot_contributions``          gauge      contributions by ``status``
``cnrbot_moderation_backlog``     gauge      contributions waiting for a moderator
``cnrbot_outbox_backlog``         gauge      notices not sent yet
``cnrbot_inbox_backlog``          gauge      messages recorded, not processed yet, by ``channel``
``cnrbot_database_up``            gauge      1 when the gauges above could be read at the scrape
================================  =========  ====================================================

The gauges are read from the database at each scrape (``storage.stats``): every process shows
the same values (take the ``max`` across processes, not the sum). ``process_*`` and
``python_*`` come with the client.

:class:`MetricsServer` is the listener (``CNR_METRICS_PORT``, ``CNR_METRICS_LISTEN``), on the
command's event loop: each long-running command (``cnrbot run``, ``web``, ``console``) starts
one when the port is set.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from dialogs.flow import STATES
from storage.settings import Settings
from storage.stats import backlog
from storage.vocabulary import STATUSES

log = logging.getLogger(__name__)

OUTCOMES = ("done", "failed", "duplicate", "resumed")

MESSAGES = Counter(
    "cnrbot_messages", "Citizens' messages handled, by channel and outcome", ["channel", "outcome"]
)
STEP_SECONDS = Histogram(
    "cnrbot_step_seconds",
    "Time to handle one message (transaction and replies), by channel and the step it led to",
    ["channel", "step"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ERRORS = Counter("cnrbot_errors", "Errors, by exception class and component", ["kind", "where"])
NOTICES = Counter(
    "cnrbot_notices", "Outbox notices pushed, by channel and outcome", ["channel", "outcome"]
)
CONTRIBUTIONS = Gauge("cnrbot_contributions", "Contributions, by status", ["status"])
MODERATION_BACKLOG = Gauge("cnrbot_moderation_backlog", "Contributions waiting for moderation")
OUTBOX_BACKLOG = Gauge("cnrbot_outbox_backlog", "Outbox notices not sent yet")
INBOX_BACKLOG = Gauge(
    "cnrbot_inbox_backlog", "Citizens' messages recorded, not processed yet", ["channel"]
)
DATABASE_UP = Gauge("cnrbot_database_up", "1 when the last scrape could read the database")

_KNOWN_STEPS = frozenset(STATES)
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: The channels' names (the adapters' ``name``): the only values of the ``channel`` label.
CHANNELS = ("telegram", "web", "terminal")


def step_label(state: str | None) -> str:
    """A dialog state as a label: one of the machine's states, ``none`` or ``other``."""
    if state is None:
        return "none"
    return state if state in _KNOWN_STEPS else "other"


def channel_label(channel: str) -> str:
    return channel if channel in CHANNELS else "other"


def error_kind(exc: BaseException) -> str:
    """The exception's class name (code defines those: a bounded set)."""
    name = type(exc).__name__
    return name if _CLASS_NAME.fullmatch(name) else "other"


def message(channel: str, outcome: str) -> None:
    MESSAGES.labels(channel_label(channel), outcome if outcome in OUTCOMES else "other").inc()


def error(exc: BaseException, where: str) -> None:
    ERRORS.labels(error_kind(exc), where).inc()


def notice(channel: str, outcome: str) -> None:
    NOTICES.labels(channel_label(channel), outcome).inc()


@contextmanager
def step_timer(channel: str, step: Callable[[], str | None]) -> Iterator[None]:
    """Observe the time of the block, under the step ``step()`` names once it is over."""
    start = time.perf_counter()
    try:
        yield
    finally:
        STEP_SECONDS.labels(channel_label(channel), step_label(step())).observe(
            time.perf_counter() - start
        )


async def refresh_gauges(engine: AsyncEngine, *, within: float = 5.0) -> bool:
    """Read the gauges from the database; False (and ``cnrbot_database_up`` 0, the other gauges
    as last read) when it does not answer."""
    try:
        async with asyncio.timeout(within):
            counts = await backlog(engine)
    except Exception as exc:  # an outage must not fail the scrape: the counters still count
        log.warning("metrics: database unavailable (%s)", type(exc).__name__)
        DATABASE_UP.set(0)
        return False
    for status in STATUSES:
        CONTRIBUTIONS.labels(status).set(counts.contributions.get(status, 0))
    MODERATION_BACKLOG.set(counts.moderation)
    OUTBOX_BACKLOG.set(counts.outbox)
    for channel in CHANNELS:
        INBOX_BACKLOG.labels(channel).set(counts.inbox.get(channel, 0))
    DATABASE_UP.set(1)
    return True


class MetricsServer:
    """``GET /metrics`` on ``settings.metrics_listen:metrics_port`` (no listener when the port
    is unset); the gauges are read from ``engine_of()``'s database at each scrape."""

    def __init__(self, settings: Settings, engine_of: Callable[[], AsyncEngine | None]) -> None:
        self.settings = settings
        self.engine_of = engine_of
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        engine = self.engine_of()
        if engine is not None:
            await refresh_gauges(engine)
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int | None:
        """Listen (when ``metrics_port`` is set); the bound port (0 in the settings: a free
        one). Raises OSError when the port is taken."""
        if self.settings.metrics_port is None:
            return None
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.metrics_listen, self.settings.metrics_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.settings.metrics_port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_metrics(
    settings: Settings, engine_of: Callable[[], AsyncEngine | None], command: str
) -> MetricsServer:
    """Start ``command``'s metrics listener when ``CNR_METRICS_PORT`` is set, and say where;
    raises OSError (said on stderr) when it cannot listen."""
    from bot.logs import announce

    server = MetricsServer(settings, engine_of)
    listen = settings.metrics_listen
    try:
        port = await server.start()
    except OSError as exc:
        announce(
            f"cnrbot {command}: cannot listen for metrics on {listen}:{settings.metrics_port} "
            f"({exc.strerror or type(exc).__name__})",
            logging.ERROR,
        )
        raise
    if port is not None:
        announce(f"cnrbot: metrics on http://{listen}:{port}/metrics")
    return server
