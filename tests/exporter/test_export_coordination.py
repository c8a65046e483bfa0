"""Coordinated campaigns: many near-identical contributions from new participants in a short
time are one campaign; the same text from long-standing participants, or spread over weeks,
or a handful, is not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from exporter.coordination import Posting, find_coordinated

T0 = datetime(2022, 11, 20, 8, 0, tzinfo=UTC)
COPIED = (
    "Fermer la maternité de Creil serait une catastrophe, nous demandons son maintien "
    "avec tous ses moyens et ses sages-femmes."
)
VARIANTS = [
    COPIED,
    COPIED.replace("catastrophe", "catastrophe !"),
    COPIED.lower(),
    COPIED.replace("nous demandons", "je demande"),
    COPIED + " Merci.",
]


def _flood(
    n: int,
    *,
    start: int = 0,
    spacing: timedelta = timedelta(minutes=7),
    newcomers: bool = True,
    territory: str = "OISE",
) -> list[Posting]:
    out = []
    for i in range(n):
        at = T0 + spacing * i
        since = at - timedelta(minutes=3) if newcomers else at - timedelta(days=40)
        out.append(
            Posting(
                f"HDF-{territory}-{start + i:06d}",
                VARIANTS[i % len(VARIANTS)],
                1000 + start + i,
                since,
                at,
                territory,
            )
        )
    return out


def _ordinary(n: int) -> list[Posting]:
    """Everyday contributions of long-standing participants (a few look alike, as needs do)."""
    topics = [
        "Pas de médecin traitant depuis le départ à la retraite du docteur du village.",
        "Les urgences de l'hôpital sont saturées le week-end, huit heures d'attente.",
        "Il faudrait un bus vers l'hôpital pour les personnes âgées sans voiture.",
        "Plus de psychologue scolaire pour les collégiens, les délais sont de six mois.",
    ]
    return [
        Posting(
            f"HDF-SOMME-LITTORAL-SUD-{i:06d}",
            topics[i % 4] + f" Situation {i}.",
            5000 + i,
            T0 - timedelta(days=30),
            T0 + timedelta(hours=i),
            "SOMME-LITTORAL-SUD",
        )
        for i in range(n)
    ]


def test_a_copied_text_from_new_participants_is_one_campaign() -> None:
    flood = _flood(30) + _flood(10, start=100, territory="HAINAUT")
    found = find_coordinated(flood + _ordinary(40))
    assert len(found) == 1
    campaign = found[0]
    assert campaign.count == 40 and campaign.participants == 40
    assert campaign.territories == ("HAINAUT", "OISE")
    assert campaign.first == T0
    assert campaign.text == COPIED


def test_not_a_campaign() -> None:
    # long-standing participants saying the same (an association's members, say)
    assert find_coordinated(_flood(12, newcomers=False)) == []
    # the same text over weeks (one every four days)
    assert find_coordinated(_flood(12, spacing=timedelta(days=4))) == []
    # a handful
    assert find_coordinated(_flood(4)) == []
    # one person posting ten times is not five voices
    one = [
        Posting(p.reference, p.text, 42, p.participant_since, p.created_at, p.territory)
        for p in _flood(10)
    ]
    assert find_coordinated(one) == []
    # ordinary contributions
    assert find_coordinated(_ordinary(200)) == []
    assert find_coordinated([]) == []


def test_the_same_postings_in_any_order_give_the_same_campaigns() -> None:
    spread = [
        Posting(
            p.reference,
            p.text,
            p.participant,
            p.participant_since + timedelta(days=20),
            p.created_at + timedelta(days=20),
            p.territory,
        )
        for p in _flood(6, start=300, spacing=timedelta(days=5))
    ]
    postings = _flood(25) + _ordinary(60) + spread
    first = find_coordinated(postings)
    shuffled = list(postings)
    random.Random(7).shuffle(shuffled)
    assert find_coordinated(shuffled) == first
    assert first[0].count == 25


def test_the_busiest_window_is_kept_when_a_flood_has_stragglers() -> None:
    burst = _flood(8)
    late = _flood(3, start=50, spacing=timedelta(days=9))
    late = [
        Posting(
            p.reference,
            p.text,
            p.participant,
            p.participant_since,
            p.created_at + timedelta(days=10),
            p.territory,
        )
        for p in late
    ]
    (campaign,) = find_coordinated(burst + late, min_count=5)
    assert campaign.count == 8
    assert campaign.last == burst[-1].created_at
