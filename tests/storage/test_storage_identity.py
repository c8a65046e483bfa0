from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken
from pydantic import SecretStr

from storage.identity import ChatCipher, Pseudonymiser, derive_key
from storage.settings import Settings


def _settings(tmp_path: Path, secret: str = "one-secret-of-sixteen+") -> Settings:
    return Settings(secret_key=SecretStr(secret), secret_file=tmp_path / "secret.key")


def test_pseudonym_is_stable_keyed_and_not_the_id(tmp_path: Path) -> None:
    p = Pseudonymiser(_settings(tmp_path))
    key = p.key("telegram", "123456789")
    assert key == Pseudonymiser(_settings(tmp_path)).key("telegram", "123456789")
    assert len(key) == 64 and int(key, 16) >= 0
    assert "123456789" not in key
    assert key != p.key("terminal", "123456789")
    assert key != p.key("telegram", "123456780")
    assert key != Pseudonymiser(_settings(tmp_path, "another-of-sixteen+")).key(
        "telegram", "123456789"
    )


def test_keys_are_independent_per_purpose(tmp_path: Path) -> None:
    master = b"m"
    assert derive_key(master, b"a") != derive_key(master, b"b")


def test_cipher_round_trip_and_tamper(tmp_path: Path) -> None:
    cipher = ChatCipher(_settings(tmp_path))
    token = cipher.encrypt("987654321")
    assert b"987654321" not in token
    assert cipher.decrypt(token) == "987654321"
    assert cipher.encrypt("987654321") != token  # random IV
    with pytest.raises(InvalidToken):
        ChatCipher(_settings(tmp_path, "another-of-sixteen+")).decrypt(token)
    with pytest.raises(InvalidToken):
        cipher.decrypt(token[:-2] + b"xx")


def test_secret_file_created_once(tmp_path: Path) -> None:
    settings = Settings(secret_file=tmp_path / "s" / "secret.key")
    key = Pseudonymiser(settings).key("terminal", "x")
    assert (tmp_path / "s" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert Pseudonymiser(settings).key("terminal", "x") == key
