"""Benchmark of the conversation: pure dialog, then dialog + storage (SQLite, PostgreSQL).

Prints events per second of:
  * the pure dialog (``dialogs.flow.handle``; target >= 10,000/s on one core), next to a
    baseline in the same run (the conversation's serialisation round trip alone);
  * dialog + storage, one committed transaction per event, on SQLite and on PostgreSQL
    (``--pg URL`` or ``CNR_TEST_POSTGRES_URL``), next to a baseline in the same run (bare
    committed one-row UPDATE transactions on the same database);
and the bytes per stored conversation (JSON ``data``).

    .venv/bin/python bench/dialog.py [--users 200] [--concurrency 8] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select, text

from dialogs import flow
from dialogs.model import (
    CampaignView,
    ChoiceEvent,
    CommandEvent,
    Context,
    Conversation,
    Event,
    TextEvent,
)
from storage.campaign_file import read_campaign_file
from storage.campaigns_db import resolve_campaign_file
from storage.db import create_engine
from storage.models import ConversationRow
from storage.service import DialogService
from storage.settings import Settings

BENCH_SECRET = "bench-secret-not-for-production"
NOW = datetime(2022, 11, 20, 11, 0, tzinfo=UTC)  # within the default campaign's dates
NEEDS = [
    "Il n'y a plus de médecin traitant dans ma commune depuis le départ à la retraite du "
    "dernier généraliste, il faut aller à trente kilomètres.",
    "Les urgences de l'hôpital le plus proche ferment la nuit et le week-end, les familles "
    "font une heure de route pour un enfant malade.",
    "Aucun psychiatre ne prend de nouveaux patients dans le secteur, les délais dépassent "
    "six mois pour un premier rendez-vous.",
]
SOLUTIONS = [
    "Ouvrir un centre de santé avec des médecins salariés et une infirmière de coordination.",
    "Organiser une permanence de soins non programmés dans la maison de santé le samedi.",
    "Développer la téléconsultation accompagnée par un infirmier dans les pharmacies.",
]
LEVERS = "Aider au logement des internes et financer la coordination par l'assurance maladie."


def script(i: int) -> list[Event | str]:
    """A full contribution: "@choice" picks that choice id at the version it was offered."""
    return [
        CommandEvent("start"),
        "@consent:yes",
        "@t:OISE",
        "@th:2",
        TextEvent(NEEDS[i % len(NEEDS)]),
        TextEvent(SOLUTIONS[i % len(SOLUTIONS)]),
        TextEvent(LEVERS),
        "@p:-",
        "@send",
    ]


def resolve(step: Event | str, version: int) -> Event:
    if isinstance(step, str):
        return ChoiceEvent(step[1:], version)
    return step


def campaign_view() -> CampaignView:
    return read_campaign_file(resolve_campaign_file("hauts-de-france-2022.toml")).to_view()


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s"


# --- pure dialog ------------------------------------------------------------------------------


def bench_pure(view: CampaignView, conversations: int) -> dict[str, float]:
    """Events/s of the full script, and of its choice/command events and free-text events
    apart (free text runs language detection), with the serialisation baseline."""
    ctx = Context(campaign=view, now=NOW)
    _run_pure(ctx, 20)  # warm-up (langdetect profiles, caches)
    totals: dict[str, list[float]] = {"all": [0, 0], "choice": [0, 0], "text": [0, 0]}
    cpu_start = time.process_time()
    for i in range(conversations):
        conv = flow.new_conversation("fr")
        for step in script(i):
            event = resolve(step, conv.version)
            start = time.perf_counter()
            conv = flow.handle(conv, event, ctx).conversation
            spent = time.perf_counter() - start
            kind = "text" if isinstance(event, TextEvent) else "choice"
            for key in ("all", kind):
                totals[key][0] += 1
                totals[key][1] += spent
        assert conv.state == "done", conv.state
    # CPU time of this process: the same figure whatever else the machine is doing
    cpu = time.process_time() - cpu_start
    sample = Conversation(state="review", answers={"need": NEEDS[0], "solution": SOLUTIONS[0]})
    n = int(totals["all"][0])
    start = time.perf_counter()
    for _ in range(n):
        Conversation.from_dict(sample.to_dict())
    baseline = n / (time.perf_counter() - start)
    return {
        "baseline": baseline,
        "cpu": totals["all"][0] / cpu,
        **{k: v[0] / v[1] for k, v in totals.items()},
    }


def _run_pure(ctx: Context, conversations: int) -> tuple[int, float]:
    events = 0
    start = time.perf_counter()
    for i in range(conversations):
        conv = flow.new_conversation("fr")
        for step in script(i):
            conv = flow.handle(conv, resolve(step, conv.version), ctx).conversation
            events += 1
        assert conv.state == "done", conv.state
    return events, time.perf_counter() - start


# --- dialog + storage -------------------------------------------------------------------------


async def bench_storage(settings: Settings, users: int, concurrency: int) -> dict[str, float]:
    service = await DialogService.open(settings)
    try:
        # baseline: bare committed one-row transactions on the same database
        async with service.engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY, n INTEGER)")
            )
            await conn.execute(text("INSERT INTO bench_baseline VALUES (1, 0)"))
        n_base = users * 9
        start = time.perf_counter()
        for _ in range(n_base):
            async with service.engine.begin() as conn:
                await conn.execute(text("UPDATE bench_baseline SET n = n + 1 WHERE id = 1"))
        baseline = n_base / (time.perf_counter() - start)

        async def one_user(i: int, prefix: str) -> int:
            version = 0
            for step in script(i):
                result = await service.handle(
                    "bench", f"{prefix}-{i}", resolve(step, version), now=NOW
                )
                version = result.conversation.version
            assert result.submitted, f"user {i} did not submit"
            return len(script(i))

        await one_user(-1, "warm")
        start = time.perf_counter()
        events = 0
        for i in range(users):
            events += await one_user(i, "seq")
        sequential = events / (time.perf_counter() - start)

        sem = asyncio.Semaphore(concurrency)

        async def limited(i: int) -> int:
            async with sem:
                return await one_user(i, "conc")

        start = time.perf_counter()
        counts = await asyncio.gather(*(limited(i) for i in range(users)))
        concurrent = sum(counts) / (time.perf_counter() - start)

        async with service.sessions() as session:
            sizes = [
                len(json.dumps(data, ensure_ascii=False).encode())
                for data in await session.scalars(select(ConversationRow.data))
            ]
            n_conv = await session.scalar(select(func.count()).select_from(ConversationRow))
        # a draft at the review step is the largest a conversation gets
        ctx = Context(campaign=service._views[next(iter(service._views))][1], now=NOW)
        conv = flow.new_conversation("fr")
        for step in script(0)[:-1]:
            conv = flow.handle(conv, resolve(step, conv.version), ctx).conversation
        review_bytes = len(json.dumps(conv.to_dict(), ensure_ascii=False).encode())
        async with service.engine.begin() as conn:
            await conn.execute(text("DROP TABLE bench_baseline"))
        return {
            "baseline": baseline,
            "sequential": sequential,
            "concurrent": concurrent,
            "bytes_mean": statistics.mean(sizes),
            "bytes_review": review_bytes,
            "conversations": float(n_conv or 0),
        }
    finally:
        await service.close()


async def with_pg_schema(
    url: str, body: Callable[[Settings], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(Settings(database_url=url, secret_key=SecretStr(BENCH_SECRET)))
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        settings = Settings(
            database_url=url,
            database_schema=schema,
            secret_key=SecretStr(BENCH_SECRET),
        )
        return await body(settings)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def report(name: str, figures: dict[str, float], concurrency: int) -> None:
    print(f"{name}:")
    print(f"  baseline, bare 1-row UPDATE commits   {rate(1, 1 / figures['baseline'])}")
    print(f"  dialog + storage, sequential events   {rate(1, 1 / figures['sequential'])}"
          f"   ({figures['sequential'] / figures['baseline']:.0%} of baseline)")  # fmt: skip
    print(f"  dialog + storage, {concurrency} users at once    "
          f"{rate(1, 1 / figures['concurrent'])}")  # fmt: skip
    print(
        f"  bytes per stored conversation (JSON)  {figures['bytes_mean']:>10,.0f}"
        f"   (at review, the largest: {figures['bytes_review']:,.0f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=2000, help="pure dialog runs")
    parser.add_argument("--users", type=int, default=150, help="contributions per storage run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pg", default=os.environ.get("CNR_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}; one conversation = {len(script(0))} events "
          f"(3 of them free text with language detection)")  # fmt: skip
    view = campaign_view()
    pure = bench_pure(view, args.conversations)
    print("pure dialog (one core):")
    print(f"  baseline, Conversation round trip      {rate(1, 1 / pure['baseline'])}")
    print(f"  dialog events, full conversations      {rate(1, 1 / pure['all'])}   (wall clock)")
    print(f"  dialog events, per CPU second          {rate(1, 1 / pure['cpu'])}"
          f"   (target >= 10,000/s: {'met' if pure['cpu'] >= 10_000 else 'NOT met'})")  # fmt: skip
    print(f"    of which choices and commands        {rate(1, 1 / pure['choice'])}")
    print(f"    of which free text (langdetect)      {rate(1, 1 / pure['text'])}")

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            secret_key=SecretStr(BENCH_SECRET),
            secret_file=Path(tmp) / "secret.key",
        )
        figures = asyncio.run(bench_storage(settings, args.users, args.concurrency))
    report("SQLite (WAL, synchronous=NORMAL)", figures, args.concurrency)

    if args.pg:
        figures = asyncio.run(
            with_pg_schema(args.pg, lambda s: bench_storage(s, args.users, args.concurrency))
        )
        report("PostgreSQL", figures, args.concurrency)
    else:
        print("PostgreSQL: skipped (give --pg URL or set CNR_TEST_POSTGRES_URL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
