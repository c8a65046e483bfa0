"""Subcommands of ``cnrbot``: each module defines ``register(subparsers)``, adding the
subcommand of its own name; each subparser sets ``func`` (taking the parsed args, returning
the exit code). A module is imported only when its subcommand runs; its one-line summary is
listed in :data:`bot.cli.COMMANDS`."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (a long-running command's clean stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
