"""SQLAlchemy 2 models: the whole schema, migrated by Alembic (``storage/migrations``).

Privacy by construction: no table holds a Telegram identifier in clear. A participant is known by
``key`` (keyed HMAC of channel + user id); the chat id needed to answer is encrypted in
``chat_identities``, a table apart from contributions; raw inbound updates are encrypted and
their payload is erased once processed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


# --- campaigns ----------------------------------------------------------------------------


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    #: Prefix of contribution references, e.g. "HDF" in HDF-OISE-000042.
    ref_prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(200))
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    #: The validated campaign file, as data (themes, profiles, texts): what the dialog shows.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: SHA-256 of the canonical spec: loading the same file twice changes nothing.
    spec_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    territories: Mapped[list[Territory]] = relationship(
        back_populates="campaign", order_by="Territory.position"
    )
    themes: Mapped[list[Theme]] = relationship(back_populates="campaign", order_by="Theme.position")


class Territory(Base):
    __tablename__ = "territories"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    departments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: "La situation du territoire" (annex I), from the campaign file; may be empty.
    situation: Mapped[str] = mapped_column(Text, default="")
    #: Last contribution number given in this territory (references are per territory).
    last_number: Mapped[int] = mapped_column(Integer, default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="territories")


class Theme(Base):
    __tablename__ = "themes"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    #: "1".."4" national themes, "5" free supplementary theme, or a predefined extra theme code.
    code: Mapped[str] = mapped_column(String(40))
    #: Annex section number: 1..5 (every extra theme is under 5).
    number: Mapped[int] = mapped_column(Integer)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="themes")


# --- citizens -------------------------------------------------------------------------------


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: hex HMAC-SHA256(secret, channel + ":" + user id): never the identifier itself.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(8), default="fr")
    consent_version: Mapped[str | None] = mapped_column(String(40))
    consent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationRow(Base):
    __tablename__ = "conversations"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[datetime | None]


#: The texts staff search in the console (``ix_contributions_search``).
SEARCH_COLUMNS = ("reference", "need", "solution", "levers", "custom_theme")


class Contribution(Base):
    __tablename__ = "contributions"
    __table_args__ = (
        UniqueConstraint("participant_id", "draft_id"),
        Index("ix_contributions_queue", "campaign_id", "status", "created_at"),
        # The console at scale (migration 0005): the queue in its order, for everyone
        # (status first) and for a moderator (territory first), read by keyset pages.
        Index("ix_contributions_status_order", "status", "created_at", "id"),
        Index("ix_contributions_territory_order", "territory_id", "status", "created_at", "id"),
        # every status at once (the queue's "Tous")
        Index("ix_contributions_order", "created_at", "id"),
        # the dashboard's counts, read from the index alone
        Index(
            "ix_contributions_dashboard",
            "campaign_id",
            "territory_id",
            "theme_id",
            "status",
            "created_at",
        ),
        # the languages seen (the queue's filter), one index probe per language
        Index("ix_contributions_language", "language", "territory_id"),
        Index("ix_contributions_moderated", "campaign_id", "moderated_at"),
        # Text search: a trigram index (pg_trgm) for ILIKE '%...%' on PostgreSQL. SQLite
        # searches with LIKE over the rows: its index of that name is partial on a false
        # condition, so it holds nothing and costs nothing (one schema for both backends).
        Index(
            "ix_contributions_search",
            *SEARCH_COLUMNS,
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(SEARCH_COLUMNS, "gin_trgm_ops"),
            sqlite_where=text("0"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id"))
    theme_id: Mapped[int] = mapped_column(ForeignKey("themes.id"))
    #: Citizen's own label when the theme is the free supplementary theme "5".
    custom_theme: Mapped[str | None] = mapped_column(Text)
    need: Mapped[str] = mapped_column(Text)
    solution: Mapped[str] = mapped_column(Text)
    levers: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    consent_version: Mapped[str] = mapped_column(String(40))
    #: pending | approved | rejected | duplicate
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Erasing a participant ("delete my data") erases their contributions (cascade).
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    draft_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # moderation
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    reject_note: Mapped[str | None] = mapped_column(Text)
    #: Rejected as "other": the short reason written for the citizen, sent in their notice
    #: (``reject_note`` stays in the console).
    citizen_reason: Mapped[str | None] = mapped_column(String(300))
    duplicate_of: Mapped[str | None] = mapped_column(String(64))
    #: Texts as the citizen sent them, kept when a moderator redacts (admins only).
    originals: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    moderated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    moderated_at: Mapped[datetime | None]
    #: Optimistic concurrency for moderation: bumped by every change.
    version: Mapped[int] = mapped_column(Integer, default=1)

    territory: Mapped[Territory] = relationship()
    theme: Mapped[Theme] = relationship()


class ContributionTally(Base):
    """The dashboard's counts, kept by database triggers on ``contributions`` (migration 0007;
    ``storage.tallies``): every insert, delete or change of campaign, territory, theme, status
    or time appends deltas (+1 / -1) — nothing is updated in place, so submissions never wait
    on each other — and reading sums them. Two kinds of row: a cell (theme and status, no hour)
    and a reception (the UTC hour it was received, no theme or status). The maintenance folds
    the deltas into one row per group. No foreign keys: deltas of a deleted campaign sum to
    zero and are folded away.

    A migration that rebuilds ``contributions`` on SQLite (batch "move and copy") drops its
    triggers: it must create them again (migration 0007's ``create_sqlite_triggers``)."""

    __tablename__ = "contribution_tallies"
    __table_args__ = (
        Index("ix_contribution_tallies_campaign", "campaign_id", "territory_id", "status"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[int] = mapped_column(Integer)
    territory_id: Mapped[int] = mapped_column(Integer)
    theme_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(16))
    hour: Mapped[datetime | None]
    n: Mapped[int] = mapped_column(Integer)


# --- channels -------------------------------------------------------------------------------


class ChatIdentity(Base):
    """How to reach a participant: their chat id, encrypted (Fernet). Kept apart on purpose."""

    __tablename__ = "chat_identities"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboundMessage(Base):
    """A citizen's message on any channel (a raw Telegram update, a web chat form), recorded
    before the channel is acknowledged; applied once, in order (see ``storage.inbox``)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "message_id"),
        Index("ix_inbound_pending", "status", "participant_key", "seq"),
    )

    #: The inbox's own number (rows are finished and marked by it).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    #: "telegram", "web"...
    channel: Mapped[str] = mapped_column(String(16))
    #: The channel's id of the message: Telegram's update_id, the web form's client id. A
    #: re-delivery (same channel and id) inserts nothing.
    message_id: Mapped[str] = mapped_column(String(64))
    #: Order of the messages of one participant key: Telegram's update_id; for the web, the
    #: time of arrival in microseconds (ties broken by ``id``).
    seq: Mapped[int] = mapped_column(BigInteger)
    #: Ordering key: messages with the same key are applied strictly in ``seq`` order.
    participant_key: Mapped[str] = mapped_column(String(64))
    #: Encrypted JSON of the message; erased (NULL) once processed.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Encrypted replies, for channels that fetch them (the web chat): written in the same
    #: transaction as the message's effects; erased after ``settings.web_reply_retention``.
    replies: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: pending | applied | done | failed
    status: Mapped[str] = mapped_column(String(12), default="pending")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class Outbox(Base):
    """Notices for a participant (moderation news, reminders), queued once per meaning
    (``dedupe_key``): pushed by channels that can, shown at the next visit on the web chat.
    What delivery guarantees (a crash may lose one, a timed-out push may repeat it): see
    ``storage.outbox``."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    #: Unique per message meaning, e.g. "approved:HDF-OISE-000042": queuing twice is a no-op.
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: pending | sending | sent | failed
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    #: When a sender claimed the row ("sending"): rows claimed too long ago were interrupted.
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))


# --- staff, sessions, audit ---------------------------------------------------------------


class StaffTerritory(Base):
    __tablename__ = "staff_territories"

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    territory_id: Mapped[int] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), primary_key=True
    )


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    #: moderator | admin
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    territories: Mapped[list[Territory]] = relationship(secondary="staff_territories")


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    #: SHA-256 of the session token (the token itself lives only in the cookie).
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only: the console never updates or deletes a row."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    #: Kept as text so the entry stays readable if the account goes.
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(120))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


# --- abuse protection (web chat) ----------------------------------------------------------


class RateCounter(Base):
    """A fixed-window counter of a rate limit shared by every worker (see ``storage.ratelimit``).

    ``bucket`` names the limit, a keyed hash of who is counted (never an address in clear) and
    the window; rows are deleted once expired.
    """

    __tablename__ = "rate_counters"

    bucket: Mapped[str] = mapped_column(String(120), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(index=True)
