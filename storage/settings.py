"""The one typed settings object, read from ``CNR_*`` environment variables.

It lives in ``storage`` because storage is the lowest layer that does I/O: every layer above
(exporter, moderation, bot) imports it from here, and ``dialogs`` receives only the plain values
it needs (see :meth:`Settings.dialog_limits`). No other module reads ``os.environ``.
"""

from __future__ import annotations

import json
import secrets
from datetime import time, timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dialogs.model import DEFAULT_TIMEZONE, Limits

#: The dialog's defaults, which the settings' defaults repeat by reference.
_LIMITS = Limits()


class LogSettings(BaseSettings):
    """What logging needs, read before a command builds its :class:`Settings` (``cnrbot``
    sets logging up first); :class:`Settings` has these fields too."""

    model_config = SettingsConfigDict(env_prefix="CNR_", extra="ignore")

    #: ``text`` (one line for a person) or ``json`` (one JSON object per line, for a log
    #: collector: time, level, logger, message, and the exception's class for errors).
    log_format: Literal["text", "json"] = "text"


class Settings(LogSettings):
    """All configuration. Each field ``x`` is read from ``CNR_X``."""

    model_config = SettingsConfigDict(env_prefix="CNR_", extra="ignore")

    #: ``production`` refuses to start with what is only fine on one machine for a try
    #: (see :meth:`production_problems`); deploy/.env.example sets it.
    environment: Literal["development", "production"] = "development"

    # --- storage -------------------------------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///cnr.db"
    database_pool_size: int = 10
    #: PostgreSQL schema to use (``search_path``); the tests give each test its own.
    database_schema: str | None = None
    sqlite_busy_timeout_ms: int = 10_000
    #: Secret used to derive the pseudonymisation (HMAC) key and the encryption (Fernet) key.
    #: When unset, a random one is created once in ``secret_file`` (mode 0600).
    secret_key: SecretStr | None = None
    secret_file: Path = Path("cnr-secret.key")
    #: Secrets replaced by ``secret_key`` (a JSON list, newest first), kept while
    #: ``cnrbot db rotate-keys`` re-encrypts and re-keys (see storage.keys): what they
    #: encrypted still decrypts, and a citizen known under one is recognised and re-keyed.
    previous_secret_keys: tuple[SecretStr, ...] = ()

    # --- campaign and conversation ----------------------------------------------------------
    #: Campaign offered to citizens (its ``code``); default: the only or latest loaded one.
    campaign: str | None = None
    #: Campaign file loaded into a new, empty database.
    default_campaign_file: str = "hauts-de-france-2022.toml"
    default_language: str = "fr"
    # The dialog's limits: their defaults are written once, in dialogs.model.Limits.
    privacy_notice_version: str = _LIMITS.privacy_notice_version
    draft_ttl: timedelta = _LIMITS.draft_ttl
    text_min_chars: int = _LIMITS.text_min
    text_max_chars: int = _LIMITS.text_max
    levers_max_chars: int = _LIMITS.levers_max
    custom_theme_max_chars: int = _LIMITS.custom_theme_max
    #: Below this many letters, langdetect is not trusted and the interface language stands.
    langdetect_min_letters: int = _LIMITS.langdetect_min_letters
    #: Minimum langdetect probability to offer a language switch.
    langdetect_min_confidence: float = _LIMITS.langdetect_min_confidence
    #: Contributions one citizen may send a day (local day of the campaign's time zone); one
    #: more is kept at the review step with a polite message (``storage.daily_cap``).
    daily_contribution_cap: int = Field(default=10, ge=1)

    # --- telegram ------------------------------------------------------------------------------
    telegram_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_api_file_url: str = "https://api.telegram.org/file/bot"
    webhook_secret: SecretStr | None = None
    webhook_path: str | None = None
    webhook_max_connections: int = 40
    #: Outgoing messages per second, all chats together (Telegram's bulk limit is about 30);
    #: 0 turns the overall limit off (a self-hosted Bot API server, the tests' fake server).
    telegram_max_rate: float = Field(default=30.0, ge=0.0)
    reminder_after: timedelta = timedelta(hours=24)
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    timezone: str = DEFAULT_TIMEZONE
    notify_citizens: bool = True
    #: How often each worker looks at the outbox on its own. On SQLite, the longest a
    #: moderation decision waits before it is sent; on PostgreSQL the console's commit wakes
    #: the workers at once (``LISTEN``/``NOTIFY``, ``storage.notify``) and this is the safety net.
    notify_poll_interval: timedelta = timedelta(seconds=4)
    #: Processed updates (done/failed) are deleted this long after being processed. At least
    #: 24 h: Telegram re-delivers an update for up to 24 h, and a forgotten update_id would be
    #: applied again.
    inbound_retention: timedelta = timedelta(hours=48)
    #: How long after its campaign closes a participant's identity is kept (Telegram chat id,
    #: the link to a browser): then the maintenance erases it and gives the participant a
    #: random key, so their contributions stay, tied to nobody. Until then they can still
    #: read and delete their contributions, and be told of moderation outcomes.
    identity_retention: timedelta = _LIMITS.identity_retention
    #: How long after its rejection a contribution keeps its texts (to answer a citizen who
    #: asks why): then the maintenance erases them, keeping the reference, reason and dates.
    rejected_text_retention: timedelta = _LIMITS.rejected_text_retention
    #: Outbox rows claimed ("sending") longer ago than this were interrupted (a crash): they
    #: are marked failed, never sent again (a crash loses a notice rather than repeating it).
    outbox_sending_timeout: timedelta = timedelta(minutes=10)

    # --- web chat ----------------------------------------------------------------------------
    #: Public address of the web chat (links, posters' QR codes), e.g.
    #: https://contribuer.ars.example.fr/ ; unset: the address the request came to.
    web_public_url: str | None = None
    #: The Telegram bot's username (without "@"), for the deep links printed on posters.
    telegram_bot_username: str | None = None
    #: Sites allowed to show the web chat in a frame (CSP ``frame-ancestors``), separated by
    #: spaces, e.g. "https://www.hauts-de-france.ars.sante.fr"; empty: no site may frame it.
    web_frame_ancestors: str = ""
    #: Secure cookies: true whenever the web chat is served over HTTPS.
    web_secure_cookies: bool = False
    #: Largest request body accepted, in bytes (a 3,000-character text is well below).
    web_max_body_bytes: int = Field(default=65_536, ge=4_096)
    #: Requests per minute from one client address (shared Wi-Fi and mobile carriers put many
    #: citizens behind one address: keep it generous).
    web_rate_per_address: int = Field(default=300, ge=1)
    #: Messages per minute of one citizen.
    web_rate_per_participant: int = Field(default=30, ge=1)
    #: First contributions sent without a solved proof-of-work (browsers without JavaScript),
    #: per client address and per hour.
    web_rate_unverified_per_address: int = Field(default=6, ge=1)
    #: ... and for the whole site per hour (a script spread over many addresses).
    web_rate_unverified_total: int = Field(default=200, ge=1)
    #: Difficulty of the proof-of-work (ALTCHA's largest number): at 50,000 a browser works
    #: ~0.75 s on average (measured ~33,000 hashes/s in headless Chromium on 2 cores).
    altcha_max_number: int = Field(default=50_000, ge=1_000)
    #: A challenge must be solved and used within this time.
    altcha_expires: timedelta = timedelta(minutes=20)
    #: The replies of a web chat message are kept (encrypted) this long, for a reloaded page or
    #: a retried request; then erased.
    web_reply_retention: timedelta = timedelta(hours=1)

    # --- maintenance ---------------------------------------------------------------------------
    #: How often the running bot purges expired drafts and processed updates and recovers
    #: interrupted outbox sends (``cnrbot db maintenance`` does it once).
    maintenance_interval: timedelta = timedelta(hours=1)

    # --- observability -----------------------------------------------------------------------
    #: Port of the Prometheus metrics listener (``/metrics``) of each long-running command
    #: (``cnrbot run``, ``web``, ``console``); unset: no metrics listener. Never public: each
    #: process on one host needs its own port; 0 picks a free one (printed at start).
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    #: Address the metrics listener binds to (an internal one: never behind the public proxy).
    metrics_listen: str = "127.0.0.1"

    # --- behind the reverse proxy ------------------------------------------------------------
    #: The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto the web chat and the
    #: console believe (addresses or networks, separated by commas); anyone else's are ignored.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
    )

    # --- moderation console ------------------------------------------------------------------
    console_session_idle: timedelta = timedelta(minutes=30)
    console_max_failed_logins: int = 5
    console_lockout: timedelta = timedelta(minutes=15)
    console_secure_cookies: bool = False
    console_page_size: int = 25

    # --- export -----------------------------------------------------------------------------
    similarity_threshold: float = Field(default=0.82, ge=0.0, le=1.0)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies_from_a_list(cls, value: object) -> object:
        """``127.0.0.1, 10.0.0.0/8`` (a JSON list works too)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.replace(",", " ").split() if part]
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _no_blank_previous(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for secret in value:
            if len(secret.get_secret_value().strip()) < 16:
                raise ValueError("each previous secret must be at least 16 characters")
        return value

    @field_validator("secret_key", "webhook_secret", "telegram_token")
    @classmethod
    def _no_blank_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty or whitespace secret is a mistake, not "no secret": refuse it."""
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (or left unset)")
        return value

    @field_validator("inbound_retention")
    @classmethod
    def _retention_covers_redelivery(cls, value: timedelta) -> timedelta:
        """Telegram re-delivers an update for 24 h: forgetting its update_id sooner would
        apply it twice."""
        if value < timedelta(hours=24):
            raise ValueError("must be at least 24 hours (Telegram re-delivers for 24 hours)")
        return value

    @field_validator(
        "outbox_sending_timeout",
        "maintenance_interval",
        "notify_poll_interval",
        "altcha_expires",
        "web_reply_retention",
        "identity_retention",
        "rejected_text_retention",
    )
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @model_validator(mode="after")
    def _ready_for_production(self) -> Settings:
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("refused in production: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What makes this configuration unfit for production (empty: fit)."""
        problems: list[str] = []
        if self.secret_key is None:
            problems.append(
                "CNR_SECRET_KEY is not set (a secret file per machine would give each worker "
                "its own pseudonyms and keys)"
            )
        elif _looks_like_a_default(self.secret_key.get_secret_value()):
            problems.append(
                "CNR_SECRET_KEY is a placeholder or an example (generate one: "
                'python3 -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if self.webhook_path and self.webhook_secret is None:
            problems.append("CNR_WEBHOOK_SECRET is not set while CNR_WEBHOOK_PATH is")
        elif self.webhook_secret is not None and _looks_like_a_default(
            self.webhook_secret.get_secret_value()
        ):
            problems.append("CNR_WEBHOOK_SECRET is a placeholder or an example")
        return problems

    def dialog_limits(self) -> Limits:
        """The plain values the pure dialog needs."""
        return Limits(
            text_min=self.text_min_chars,
            text_max=self.text_max_chars,
            levers_max=self.levers_max_chars,
            custom_theme_max=self.custom_theme_max_chars,
            langdetect_min_letters=self.langdetect_min_letters,
            langdetect_min_confidence=self.langdetect_min_confidence,
            privacy_notice_version=self.privacy_notice_version,
            draft_ttl=self.draft_ttl,
            identity_retention=self.identity_retention,
            rejected_text_retention=self.rejected_text_retention,
        )

    def previous_master_secrets(self) -> list[bytes]:
        """The secrets being rotated out (see ``previous_secret_keys``), without the current."""
        current = self.master_secret()
        olds = [s.get_secret_value().encode() for s in self.previous_secret_keys]
        return [old for old in dict.fromkeys(olds) if old != current]

    def master_secret(self) -> bytes:
        """The master secret; created once in ``secret_file`` when not given."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_file
        if path.exists():
            return path.read_text().strip().encode()
        value = secrets.token_urlsafe(48)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x") as fh:
            path.chmod(0o600)
            fh.write(value + "\n")
        return value.encode()


#: Words of the secrets written in documentation, examples and tests.
_PLACEHOLDER_WORDS = ("change", "example", "not-for-production", "placeholder", "secret", "xxxx")


def _looks_like_a_default(value: str) -> bool:
    """A secret copied from a document or a test, or with too little variety to be random."""
    lowered = value.lower()
    return any(word in lowered for word in _PLACEHOLDER_WORDS) or len(set(value)) < 10
