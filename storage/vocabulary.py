"""Codes stored in the tables that the layers above put into words.

One list each: the console labels them in French for staff (``moderation.services``), the
citizen's notice words them in the citizen's language (catalogue keys ``reject_reason.<code>``).
"""

from __future__ import annotations

#: ``Contribution.status``; "withdrawn": by the citizen, texts erased (``storage.withdraw``).
STATUSES: tuple[str, ...] = ("pending", "approved", "rejected", "duplicate", "withdrawn")

#: ``Contribution.reject_reason``; "other" asks the moderator for a note.
REJECT_REASONS: tuple[str, ...] = ("offtopic", "abusive", "personal_data", "duplicate", "other")
