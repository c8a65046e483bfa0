"""A citizen withdraws one of their contributions (not all their data: that is
``repository.delete_participant``).

- pending (nobody has read it yet): deleted;
- approved, rejected or a duplicate: kept as ``withdrawn`` with its texts erased, so that its
  reference still means something to staff and to the annexes already written, and every
  later export leaves it out (exports take approved contributions only);
- the audit log keeps one entry: "withdrawn at the participant's request", with the
  reference, nothing else; notices not yet sent about it are dropped.

Idempotent: withdrawing again answers ``already``. Runs in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import delete, insert, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import AuditEntry, Contribution, Outbox

WITHDRAWN = "withdrawn"
#: The audit entry's actor and the only words it keeps.
ACTOR = "participant"
REASON = "withdrawn at the participant's request"

Withdrawal = Literal["deleted", "withdrawn", "already", "unknown"]


async def withdraw_contribution(
    db: AsyncConnection, participant_id: int, reference: str, now: datetime
) -> Withdrawal:
    row = (
        await db.execute(
            select(Contribution.id, Contribution.status).where(
                Contribution.participant_id == participant_id,
                Contribution.reference == reference,
            )
        )
    ).first()
    if row is None:
        return "unknown"
    contribution_id, status = row
    if status == WITHDRAWN:
        return "already"
    outcome: Withdrawal
    if status == "pending":
        await db.execute(delete(Contribution).where(Contribution.id == contribution_id))
        outcome = "deleted"
    else:
        await db.execute(
            update(Contribution)
            .where(Contribution.id == contribution_id)
            .values(
                status=WITHDRAWN,
                need="",
                solution="",
                levers=None,
                custom_theme=None,
                originals=null(),
                reject_note=None,
                updated_at=now,
                version=Contribution.version + 1,
            )
        )
        outcome = "withdrawn"
    await db.execute(
        delete(Outbox).where(
            Outbox.participant_id == participant_id,
            Outbox.status == "pending",
            Outbox.params["reference"].as_string() == reference,
        )
    )
    await db.execute(
        insert(AuditEntry).values(
            at=now,
            staff_id=None,
            actor=ACTOR,
            action=WITHDRAWN,
            target=reference,
            before=None,
            after={"reason": REASON},
            remote_addr=None,
        )
    )
    return outcome
