"""``python -m tests.scale_worker WORKER JOURNAL cnrbot-arguments...``: the real ``cnrbot``
process, which also writes down, as JSON lines appended to JOURNAL, when it did scheduled work
(tests/integration/test_scale_faults.py reads it back to prove that it ran on one worker at a time):

* each maintenance step's work (``step``: worker, name, start, end), run while the step's
  advisory lock is held, widened by a short pause so that an overlap could not go unseen;
  and each time a step was skipped because another worker held its lock (``skip``);
* each outbox claim (``claim``: worker, row ids, time) and mark (``mark``: row id, status,
  time);
* each reminder round (``remind``: worker, how many queued).

Times are ``time.time()`` (one clock for every process of the machine)."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: The pause inside a maintenance step (its lock held).
STEP_PAUSE = 0.05


def main(argv: list[str]) -> int:
    worker, journal, *args = argv
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "worker": worker, **fields}) + "\n"
        os.write(fd, line.encode())  # one write per line, O_APPEND: lines never interleave

    _watch_maintenance(write)
    _watch_outbox(write)
    from bot.cli import main as cnrbot

    return int(cnrbot(args) or 0)


def _watch_maintenance(write: Callable[..., None]) -> None:
    import asyncio

    from storage import maintenance

    steps = {
        "purge_expired_drafts": "drafts",
        "erase_finished_payloads": "updates",
        "recover_interrupted_sends": "outbox",
        "purge_expired": "rate counters",
        "erase_identities_after_close": "retention",
    }
    for function, step in steps.items():
        original = getattr(maintenance, function)

        def watched(
            *args: Any, _original: Callable[..., Awaitable[Any]] = original, _step: str = step
        ) -> Awaitable[Any]:
            async def run() -> Any:
                start = time.time()
                try:
                    await asyncio.sleep(STEP_PAUSE)
                    return await _original(*args)
                finally:
                    write("step", step=_step, start=start, end=time.time())

            return run()

        setattr(maintenance, function, functools.wraps(original)(watched))

    try_lock = maintenance._try_lock

    async def watched_lock(session: Any, key: int) -> bool:
        got = await try_lock(session, key)
        if not got:
            write("skip", lock=key, at=time.time())
        return got

    maintenance._try_lock = watched_lock  # type: ignore[assignment]


def _watch_outbox(write: Callable[..., None]) -> None:
    from storage.outbox import OutboxStore

    claim, mark, remind = OutboxStore.claim, OutboxStore.mark, OutboxStore.queue_reminders

    async def watched_claim(self: OutboxStore, *args: Any, **kwargs: Any) -> Any:
        rows = await claim(self, *args, **kwargs)
        if rows:
            write("claim", rows=[r.id for r in rows], at=time.time())
        return rows

    async def watched_mark(self: OutboxStore, row_id: int, status: str, *args: Any) -> None:
        await mark(self, row_id, status, *args)
        write("mark", row=row_id, status=status, at=time.time())

    async def watched_remind(self: OutboxStore, *args: Any, **kwargs: Any) -> int:
        queued = await remind(self, *args, **kwargs)
        if queued:
            write("remind", queued=queued, at=time.time())
        return queued

    OutboxStore.claim = watched_claim  # type: ignore[method-assign]
    OutboxStore.mark = watched_mark  # type: ignore[method-assign]
    OutboxStore.queue_reminders = watched_remind  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
