"""Who sees what: a staff member's scope (their territories; everything for an admin).

Every read of contributions goes through the scope's :attr:`Scope.territories` (``storage``
filters on them), so a moderator never sees, counts or acts on a contribution outside their
territories (a reference out of scope is exactly as absent as an unknown one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from storage import staff as staff_store
from storage.moderation import Territories

if TYPE_CHECKING:
    from storage.models import Staff


@dataclass(frozen=True)
class Scope:
    staff_id: int
    email: str
    role: str
    territory_ids: frozenset[int]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def territories(self) -> Territories:
        """The territories this staff member sees, as ``storage`` takes them (None: all)."""
        return None if self.is_admin else self.territory_ids

    def allows_territory(self, territory_id: int) -> bool:
        return self.is_admin or territory_id in self.territory_ids


@dataclass
class Actor:
    """A signed-in staff member acting from an address (what the audit journal records)."""

    scope: Scope
    remote_addr: str | None = None


async def scope_for(session: AsyncSession, staff: Staff) -> Scope:
    ids = await staff_store.territory_ids(session, staff.id)
    return Scope(staff.id, staff.email, staff.role, ids)
