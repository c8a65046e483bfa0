"""The "my data" file: everything stored about a citizen, as the channels give it (a Telegram
document, a download, a file the terminal writes), and what the dialog's message says of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from dialogs.model import MyDataSummary

#: The name of the "my data" file a channel gives (a Telegram document, a download, a file
#: written by the terminal).
MY_DATA_FILENAME = "mes-donnees-cnr-sante.json"
MY_DATA_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class Attachment:
    """A file to give the citizen with the replies (the channel decides how)."""

    filename: str
    media_type: str
    data: bytes


def my_data_file(data: dict[str, object]) -> Attachment:
    """The JSON file of a participant's data (``storage.access.participant_data``)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    return Attachment(MY_DATA_FILENAME, MY_DATA_MEDIA_TYPE, (text + "\n").encode("utf-8"))


#: Statuses in the order the "my data" message counts them.
_STATUS_ORDER = ("pending", "approved", "duplicate", "rejected", "withdrawn")


def my_data_summary(data: dict[str, object]) -> MyDataSummary:
    """What the "my data" message says of the file's content."""
    contributions = data.get("contributions")
    items = contributions if isinstance(contributions, list) else []
    statuses = [str(c.get("status")) for c in items if isinstance(c, dict)]
    order = {s: i for i, s in enumerate(_STATUS_ORDER)}
    counts = sorted(
        ((status, statuses.count(status)) for status in set(statuses)),
        key=lambda sc: (order.get(sc[0], len(order)), sc[0]),
    )
    person = data.get("participant")
    consent = person.get("consent") if isinstance(person, dict) else None
    version = consent.get("notice_version") if isinstance(consent, dict) else None
    accepted = consent.get("accepted_at") if isinstance(consent, dict) else None
    return MyDataSummary(
        contributions=tuple(counts),
        consent_version=str(version) if version else None,
        consent_at=datetime.fromisoformat(accepted) if isinstance(accepted, str) else None,
        has_draft=_has_draft(data.get("draft")),
        filename=MY_DATA_FILENAME,
    )


def _has_draft(draft: object) -> bool:
    """A draft with answers beyond the territory kept for the next contribution."""
    answers = draft.get("answers") if isinstance(draft, dict) else None
    return isinstance(answers, dict) and any(k != "territory" for k in answers)
