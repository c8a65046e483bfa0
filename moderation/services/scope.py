"""Who sees what: a staff member's scope (their territories; everything for an admin).

Every query that touches contributions goes through :meth:`Scope.clause`, so a moderator never
sees, counts or acts on a contribution outside their territories (a reference out of scope is
exactly as absent as an unknown one).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Contribution, Staff, Territory


@dataclass(frozen=True)
class Scope:
    staff_id: int
    email: str
    role: str
    territory_ids: frozenset[int]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def clause(self) -> ColumnElement[bool]:
        """Contributions this staff member may see."""
        if self.is_admin:
            return true()
        if not self.territory_ids:
            return false()
        return Contribution.territory_id.in_(sorted(self.territory_ids))

    def on(
        self, territory_id: ColumnElement[int] | InstrumentedAttribute[int]
    ) -> ColumnElement[bool]:
        """The same scope on another table's territory column (e.g. the dashboard's tallies)."""
        if self.is_admin:
            return true()
        if not self.territory_ids:
            return false()
        return territory_id.in_(sorted(self.territory_ids))

    def territory_clause(self) -> ColumnElement[bool]:
        if self.is_admin:
            return true()
        if not self.territory_ids:
            return false()
        return Territory.id.in_(sorted(self.territory_ids))

    def allows_territory(self, territory_id: int) -> bool:
        return self.is_admin or territory_id in self.territory_ids


@dataclass
class Actor:
    """A signed-in staff member acting from an address (what the audit journal records)."""

    scope: Scope
    remote_addr: str | None = None


async def scope_for(session: AsyncSession, staff: Staff) -> Scope:
    ids = await session.scalars(
        select(Territory.id).join_from(Staff, Staff.territories).where(Staff.id == staff.id)
    )
    return Scope(staff.id, staff.email, staff.role, frozenset(ids))
