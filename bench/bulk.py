"""Bench helper: many contributions in a PostgreSQL database fast, with one ``INSERT ... SELECT``
over ``generate_series`` (100,000 in a few seconds), for the console's benchmark.

The rows look like a consultation's: the 7 territories and the themes of the loaded campaign,
round-robin; texts built from a few dozen phrases and a made-up place name, so a word is
frequent ("pédiatre": ~8 % of the rows) and a place name rare; 55 % pending, 35 % approved,
7 % rejected, 3 % duplicates; one received every 40 s from the campaign's opening; one
participant for every 4 contributions. The dashboard's tallies the triggers appended are then
folded, as the maintenance does. Nothing here is a test: the figures are printed by
``bench/console.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.export import LEVERS as EXPORT_LEVERS
from bench.export import PROBLEMS, SOLUTIONS, SUBJECTS
from storage.db import session_factory
from storage.tallies import fold_tallies

#: The phrases of the export benchmark's texts (levers: the non-empty ones).
LEVERS = [lever for lever in EXPORT_LEVERS if lever]
#: (status, share in thousandths)
STATUS_MIX = (("pending", 550), ("approved", 350), ("rejected", 70), ("duplicate", 30))


def _array(items: list[str]) -> str:
    quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in items)
    return f"ARRAY[{quoted}]::text[]"


def _pick(items: list[str], seed: str) -> str:
    """SQL: an element of ``items`` chosen by the integer expression ``seed``."""
    return f"({_array(items)})[1 + (({seed}) % {len(items)})]"


def _place(seed: str) -> str:
    """SQL: a made-up place name (six letters from an MD5: rare words)."""
    return f"initcap(translate(substr(md5(({seed})::text), 1, 6), '0123456789', 'ghjklmnpqr'))"


async def generate_postgres(
    engine: AsyncEngine, campaign_id: int, n: int, start: datetime | None = None
) -> None:
    """Insert ``n`` contributions (and their participants) into the campaign ``campaign_id``;
    references continue each territory's numbering (``last_number`` is brought up to date)."""
    start = start or datetime(2022, 11, 14, 8, 0, tzinfo=UTC)
    status_case = "CASE"
    bound = 0
    for status, share in STATUS_MIX:
        bound += share
        status_case += f" WHEN g.i % 1000 < {bound} THEN '{status}'"
    status_case += " END"
    async with engine.begin() as conn:
        territories = (
            await conn.execute(
                sa.text(
                    "SELECT id, code, last_number FROM territories WHERE campaign_id = :c "
                    "ORDER BY position, id"
                ),
                {"c": campaign_id},
            )
        ).all()
        themes = (
            await conn.execute(
                sa.text("SELECT id FROM themes WHERE campaign_id = :c ORDER BY position, id"),
                {"c": campaign_id},
            )
        ).all()
        prefix = await conn.scalar(
            sa.text("SELECT ref_prefix FROM campaigns WHERE id = :c"), {"c": campaign_id}
        )
        first_participant = (
            await conn.scalar(sa.text("SELECT coalesce(max(id), 0) + 1 FROM participants")) or 1
        )
        participants = -(-n // 4)
        await conn.execute(
            sa.text(
                "INSERT INTO participants (id, key, channel, lang, consent_version, consent_at, "
                "created_at) SELECT :first + g.i, md5('bench-participant-' || (:first + g.i)) "
                "|| md5('key-' || (:first + g.i)), 'telegram', 'fr', '2022-11-v1', :at, :at "
                "FROM generate_series(0, :count - 1) AS g(i)"
            ),
            {"first": first_participant, "count": participants, "at": start},
        )
        await conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('participants', 'id'), "
                "(SELECT max(id) FROM participants))"
            )
        )
        t_ids = "ARRAY[" + ", ".join(str(t.id) for t in territories) + "]::int[]"
        t_codes = _array([t.code for t in territories])
        t_last = "ARRAY[" + ", ".join(str(t.last_number) for t in territories) + "]::int[]"
        th_ids = "ARRAY[" + ", ".join(str(t.id) for t in themes) + "]::int[]"
        nt, nth = len(territories), len(themes)
        need = (
            f"{_pick(SUBJECTS, 'g.i * 7')} || ' ' || {_pick(PROBLEMS, 'g.i / 7')} || ' à ' || "
            f"{_place('g.i')} || '.'"
        )
        solution = (
            f"'Il faudrait ' || {_pick(SOLUTIONS, 'g.i / 3')} || ' près de ' || "
            f"{_place('g.i + 1000003')} || '.'"
        )
        levers = f"CASE WHEN g.i % 3 = 0 THEN {_pick(LEVERS, 'g.i / 11')} END"
        statement = f"""
            INSERT INTO contributions (reference, campaign_id, territory_id, theme_id,
                custom_theme, need, solution, levers, profile, language, channel,
                consent_version, status, participant_id, draft_id, created_at, updated_at,
                moderated_at, reject_reason, version)
            SELECT
                :prefix || '-' || ({t_codes})[1 + g.i % {nt}] || '-' ||
                    lpad((({t_last})[1 + g.i % {nt}] + g.i / {nt} + 1)::text, 6, '0'),
                :campaign,
                ({t_ids})[1 + g.i % {nt}],
                ({th_ids})[1 + (g.i / {nt}) % {nth}],
                NULL,
                {need},
                {solution},
                {levers},
                (ARRAY['patient', 'aidant', 'professionnel', NULL])[1 + g.i % 4],
                CASE WHEN g.i % 20 = 0 THEN 'en' ELSE 'fr' END,
                CASE WHEN g.i % 3 = 0 THEN 'web' ELSE 'telegram' END,
                '2022-11-v1',
                s.status,
                :first + g.i / 4,
                g.i,
                CAST(:start AS timestamptz) + g.i * interval '40 seconds',
                CAST(:start AS timestamptz) + g.i * interval '40 seconds',
                CASE WHEN s.status <> 'pending' THEN
                    CAST(:start AS timestamptz) + g.i * interval '40 seconds'
                    + interval '2 days' END,
                CASE WHEN s.status = 'rejected' THEN 'off_topic' END,
                1
            FROM generate_series(0, :n - 1) AS g(i)
            CROSS JOIN LATERAL (SELECT {status_case} AS status) AS s
        """
        await conn.execute(
            sa.text(statement),
            {
                "prefix": prefix,
                "campaign": campaign_id,
                "first": first_participant,
                "start": start,
                "n": n,
            },
        )
        for k, t in enumerate(territories):
            added = len(range(k, n, nt))
            await conn.execute(
                sa.text("UPDATE territories SET last_number = last_number + :a WHERE id = :t"),
                {"a": added, "t": t.id},
            )
    async with session_factory(engine)() as session, session.begin():
        await fold_tallies(session)  # as the maintenance does (the triggers appended deltas)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE contributions"))
        await conn.execute(sa.text("VACUUM ANALYZE participants"))
        await conn.execute(sa.text("VACUUM ANALYZE contribution_tallies"))
