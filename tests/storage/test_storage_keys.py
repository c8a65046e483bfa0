"""Rotation of CNR_SECRET_KEY: a new secret with the old one kept as previous; everything
encrypted under the old one still reads, ``rotate_keys`` re-encrypts and re-keys, a web
citizen is re-keyed when they come back, and after the old secret is dropped every citizen
still finds their conversation (one participant each: no duplicate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken
from pydantic import SecretStr
from sqlalchemy import func, select

from dialogs.model import ChoiceEvent, TextEvent
from storage.contacts import Contacts
from storage.identity import ChatCipher, Pseudonymiser
from storage.keys import rotate_keys
from storage.models import ChatIdentity, InboundMessage, Participant
from storage.service import DialogService
from storage.settings import Settings
from tests.telegram_helpers import open_campaign_file

OLD = "old-7Hq2Lw9Zr4Kp1Nv8Bx3Mc6Td0Yf5Gs"
NEW = "new-Qa8Ws2Ed6Rf1Tg4Yh7Uj0Ik3Ol9Pz"
OTHER = "other-Zx1Cv4Bn7Mq2We5Rt8Yu0Io3Pa6S"
CHAT_ID = "5551234"
TOKEN = "web-browser-token-0042"


def _with(settings: Settings, secret: str, previous: tuple[str, ...] = ()) -> Settings:
    values = settings.model_dump()
    values.update(
        secret_key=SecretStr(secret),
        previous_secret_keys=tuple(SecretStr(p) for p in previous),
        default_campaign_file=str(open_campaign_file(settings.secret_file.parent)),
    )
    return Settings(**values)


async def _count(service: DialogService, model: type) -> int:
    async with service.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(model)) or 0)


async def _key_of(service: DialogService, channel: str) -> str:
    async with service.engine.connect() as conn:
        return str(await conn.scalar(select(Participant.key).where(Participant.channel == channel)))


async def test_rotation_round_trip(db_settings: Settings, tmp_path: Path) -> None:
    old = _with(db_settings, OLD)
    service = await DialogService.open(old)
    try:
        # A Telegram citizen (their chat id kept encrypted) and a web citizen, both consented.
        for channel, user in (("telegram", CHAT_ID), ("web", TOKEN)):
            await service.handle(channel, user, TextEvent("Bonjour"))
            result = await service.handle(channel, user, ChoiceEvent("consent:yes"))
            assert result.conversation.state == "territory"
        contacts = Contacts(old, service.engine)
        async with service.engine.begin() as conn:
            pid = await conn.scalar(select(Participant.id).where(Participant.channel == "telegram"))
            await contacts.keep(conn, int(pid), "telegram", CHAT_ID)
            # A message waiting in the inbox, and one encrypted by a secret nobody has.
            await conn.execute(
                InboundMessage.__table__.insert(),
                [
                    {
                        "channel": "telegram",
                        "message_id": "900",
                        "seq": 900,
                        "participant_key": Pseudonymiser(old).key("telegram", CHAT_ID),
                        "payload": ChatCipher(old).encrypt('{"update_id": 900}'),
                        "status": "pending",
                    },
                    {
                        "channel": "telegram",
                        "message_id": "901",
                        "seq": 901,
                        "participant_key": "x" * 64,
                        "payload": ChatCipher(_with(db_settings, OTHER)).encrypt("{}"),
                        "status": "pending",
                    },
                ],
            )
    finally:
        await service.close()

    rotating = _with(db_settings, NEW, (OLD,))
    service = await DialogService.open(rotating)
    try:
        report = await rotate_keys(rotating, service.engine)
        assert report.participants_rekeyed == 1
        assert report.chat_ids_reencrypted == 1
        assert report.payloads_reencrypted == 1
        assert report.unreadable == 1  # left as it was, counted
        assert report.left_for_their_return == 1  # the web citizen
        assert await _key_of(service, "telegram") == Pseudonymiser(rotating).key(
            "telegram", CHAT_ID
        )
        assert await _key_of(service, "web") == Pseudonymiser(old).key("web", TOKEN)
        # The web citizen comes back: recognised under their old key, re-keyed, resumed.
        back = await service.peek("web", TOKEN)
        assert back.conversation.state == "territory"
        assert await _key_of(service, "web") == Pseudonymiser(rotating).key("web", TOKEN)
        assert await _count(service, Participant) == 2
    finally:
        await service.close()

    # The old secret is gone: everything still reads, nobody is a stranger.
    new_only = _with(db_settings, NEW)
    service = await DialogService.open(new_only)
    try:
        for channel, user in (("telegram", CHAT_ID), ("web", TOKEN)):
            result = await service.handle(channel, user, ChoiceEvent("t:OISE"))
            assert result.conversation.state == "theme", channel
        assert await _count(service, Participant) == 2
        async with service.engine.connect() as conn:
            secret = await conn.scalar(select(ChatIdentity.secret))
            payload = await conn.scalar(
                select(InboundMessage.payload).where(InboundMessage.message_id == "900")
            )
            pending_key = await conn.scalar(
                select(InboundMessage.participant_key).where(InboundMessage.message_id == "900")
            )
        assert ChatCipher(new_only).decrypt(secret) == CHAT_ID
        assert ChatCipher(new_only).decrypt(payload) == '{"update_id": 900}'
        assert pending_key == Pseudonymiser(new_only).key("telegram", CHAT_ID)
        with pytest.raises(InvalidToken):
            ChatCipher(_with(db_settings, OLD)).decrypt(secret)  # truly re-encrypted
    finally:
        await service.close()


async def test_rotating_twice_changes_nothing_more(db_settings: Settings) -> None:
    old = _with(db_settings, OLD)
    service = await DialogService.open(old)
    try:
        await service.handle("telegram", CHAT_ID, TextEvent("Bonjour"))
        async with service.engine.begin() as conn:
            pid = await conn.scalar(select(Participant.id))
            await Contacts(old, service.engine).keep(conn, int(pid), "telegram", CHAT_ID)
    finally:
        await service.close()
    rotating = _with(db_settings, NEW, (OLD,))
    service = await DialogService.open(rotating)
    try:
        first = await rotate_keys(rotating, service.engine)
        second = await rotate_keys(rotating, service.engine)
        assert (first.participants_rekeyed, second.participants_rekeyed) == (1, 0)
        assert second.unreadable == 0
        assert await _key_of(service, "telegram") == Pseudonymiser(rotating).key(
            "telegram", CHAT_ID
        )
    finally:
        await service.close()


def test_previous_secrets_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 16"):
        Settings(secret_key=NEW, previous_secret_keys=("short",))
    same = Settings(secret_key=NEW, previous_secret_keys=(NEW, OLD, OLD))
    assert same.previous_master_secrets() == [OLD.encode()]


def test_the_commands(tmp_path: Path) -> None:
    """``cnrbot db rotate-keys`` as an operator types it, and its refusal without an old key;
    ``cnrbot db maintenance --dry-run`` says it changed nothing."""
    import subprocess
    import sys

    base = {"PATH": "/usr/bin:/bin", "CNR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"}

    def cnrbot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            env={**base, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    refused = cnrbot("db", "rotate-keys", CNR_SECRET_KEY=NEW)
    assert refused.returncode == 2 and "CNR_PREVIOUS_SECRET_KEYS" in refused.stderr
    done = cnrbot("db", "rotate-keys", CNR_SECRET_KEY=NEW, CNR_PREVIOUS_SECRET_KEYS=f'["{OLD}"]')
    assert done.returncode == 0, done.stderr
    assert "Telegram participants re-keyed: 0" in done.stdout
    dry = cnrbot("db", "maintenance", "--dry-run", CNR_SECRET_KEY=NEW)
    assert dry.returncode == 0 and dry.stdout.startswith("dry run, nothing changed")
