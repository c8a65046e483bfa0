"""``CNR_ENVIRONMENT=production`` refuses a configuration that only fits a try on one machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from storage.settings import Settings

GOOD = "q8Zr1vKx-Jm3tWb7NpYc2Ld9HfSe4UaG"


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({}, "CNR_SECRET_KEY is not set"),
        ({"secret_key": "test-secret-not-for-production"}, "placeholder or an example"),
        ({"secret_key": "change-me-change-me-change-me"}, "placeholder or an example"),
        ({"secret_key": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "placeholder or an example"),
        ({"secret_key": "my-super-secret-key-2022"}, "placeholder or an example"),
        ({"secret_key": GOOD, "webhook_path": "/tg/abc"}, "CNR_WEBHOOK_SECRET is not set"),
        (
            {"secret_key": GOOD, "webhook_path": "/tg/a", "webhook_secret": "example-example-x"},
            "CNR_WEBHOOK_SECRET is a placeholder",
        ),
    ],
)
def test_production_refuses_missing_or_default_secrets(
    values: dict[str, str], said: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="refused in production") as refused:
        Settings(environment="production", secret_file=tmp_path / "s.key", **values)
    assert said in str(refused.value)
    assert not (tmp_path / "s.key").exists()  # no secret file made behind the operator's back


def test_production_with_real_secrets_starts_and_development_is_lenient(
    tmp_path: Path,
) -> None:
    fine = Settings(
        environment="production",
        secret_key=GOOD,
        webhook_path="/tg/abc",
        webhook_secret="Xw5Tn0Rb8Kq2Vy6Mz4Lc1Jd7Gh3Fs9Pa",
    )
    assert fine.production_problems() == []
    relaxed = Settings(secret_key="test-secret-not-for-production")
    assert relaxed.environment == "development"
    assert relaxed.production_problems() != []  # known, but a laptop may run it


def test_a_command_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CNR_ENVIRONMENT": "production",
        "CNR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cnr.db",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "CNR_SECRET_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cnr.db").exists()
