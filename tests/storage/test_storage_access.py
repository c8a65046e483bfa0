"""The right of access: everything stored about one participant, in the documented schema
(docs/my-data.schema.json), and nothing about anyone else, staff, or their identity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.access import participant_data
from storage.db import session_factory
from storage.models import Contribution, ConversationRow, Outbox, Participant
from tests.export_helpers import PARTICIPANT_KEY, C, seed

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "my-data.schema.json").read_text()
)
NOW = datetime(2022, 12, 5, 9, 0, tzinfo=UTC)


async def test_everything_about_one_participant_in_the_documented_schema(
    engine: AsyncEngine,
) -> None:
    await seed(
        engine,
        [
            C(need="Pas de pédiatre à moins de 40 km de chez nous.", profile="usager"),
            C(
                need="Le docteur [nom masqué] ne prend plus de patients.",
                status="rejected",
                originals={"need": "Le docteur Martin ne prend plus de patients."},
            ),
            C(need="Un texte d'un autre habitant du canton voisin.", territory="HAINAUT"),
        ],
    )
    async with session_factory(engine)() as s, s.begin():
        me = await s.scalar(select(Participant.id).where(Participant.key == PARTICIPANT_KEY))
        other = Participant(key="e" * 64, channel="web", lang="fr")
        s.add(other)
        await s.flush()
        # The third contribution is someone else's.
        third = await s.scalar(
            select(Contribution.id).where(Contribution.need.startswith("Un texte d'un autre"))
        )
        await s.execute(
            update(Contribution).where(Contribution.id == third).values(participant_id=other.id)
        )
        await s.execute(
            update(Contribution)
            .where(Contribution.status == "rejected")
            .values(reject_reason="personal_data", reject_note="note interne du modérateur")
        )
        await s.execute(
            update(Participant)
            .where(Participant.id == me)
            .values(consent_version="2022-11-v1", consent_at=NOW)
        )
        s.add(
            ConversationRow(
                participant_id=me,
                state="solution",
                data={"answers": {"territory": "OISE", "need": "Un brouillon en cours."}},
            )
        )
        s.add(
            Outbox(
                participant_id=me,
                dedupe_key="approved:HDF-OISE-000001",
                kind="approved",
                params={"reference": "HDF-OISE-000001"},
            )
        )

    async with engine.connect() as conn:
        data = await participant_data(conn, int(me), now=NOW)
        assert await participant_data(conn, 999_999, now=NOW) is None
    assert data is not None
    jsonschema.validate(data, SCHEMA)
    text = json.dumps(data, ensure_ascii=False)
    assert data["participant"]["consent"] == {
        "notice_version": "2022-11-v1",
        "accepted_at": NOW.isoformat(),
    }
    assert [c["reference"] for c in data["contributions"]] == [
        "HDF-OISE-000001",
        "HDF-OISE-000002",
    ]
    rejected = data["contributions"][1]
    assert rejected["status"] == "rejected" and rejected["reject_reason"] == "personal_data"
    assert rejected["texts"]["need"].startswith("Le docteur [nom masqué]")
    assert rejected["texts_as_sent"]["need"] == "Le docteur Martin ne prend plus de patients."
    assert data["contributions"][0]["texts_as_sent"] is None
    assert data["draft"] == {
        "step": "solution",
        "answers": {"territory": "OISE", "need": "Un brouillon en cours."},
        "updated_at": data["draft"]["updated_at"],
    }
    assert data["notices"][0]["kind"] == "approved"
    # Nothing of anyone else, of the staff, or of their identity.
    assert "autre habitant" not in text
    assert "note interne" not in text
    assert PARTICIPANT_KEY not in text
    assert data["participant"]["chat_identity_kept"] is False
