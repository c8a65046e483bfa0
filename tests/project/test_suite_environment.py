"""The suite's result does not depend on the ``CNR_*`` variables of the shell that runs it.

Each application setting is read from a ``CNR_*`` variable: an operator's shell (or a CI
runner) may export some. A child ``pytest`` runs tests that read their settings from the
environment, once with a shell full of hostile settings and once clean, and must give the same
result (everything passes both times).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Settings that break these tests when they leak in (each was seen to fail one before the
#: suite cleaned its environment): a missing campaign, a database that cannot exist, other
#: limits, language, timezone and secrets.
HOSTILE = {
    "CNR_CAMPAIGN": "bogus",
    "CNR_DATABASE_URL": "sqlite+aiosqlite:////nonexistent/dir/x.db",
    "CNR_DATABASE_SCHEMA": "nowhere",
    "CNR_SECRET_KEY": "polluted",
    "CNR_TEXT_MIN_CHARS": "200",
    "CNR_DEFAULT_LANGUAGE": "en",
    "CNR_TIMEZONE": "Pacific/Kiritimati",
    "CNR_WEB_RATE_PER_ADDRESS": "1",
    "CNR_NOTIFY_CITIZENS": "false",
    "CNR_CONSOLE_PAGE_SIZE": "1",
    "CNR_LOG_FORMAT": "json",
}

#: Tests that read settings from the environment (terminal chat in a subprocess, the poster
#: command, the web chat's defaults).
TESTS = [
    "tests/terminal/test_terminal.py::test_database_outage_during_a_line",
    "tests/web/test_poster.py",
    "tests/dialogs/test_dialog_flow.py",
]


def _child_pytest(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _summary(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]


def test_hostile_cnr_variables_in_the_shell_change_nothing() -> None:
    clean = _child_pytest({})
    hostile = _child_pytest(HOSTILE)
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert hostile.returncode == 0, hostile.stdout[-3000:]
    assert " passed" in _summary(hostile) and "failed" not in _summary(hostile)
    # Same tests, same outcome (counts of passed/skipped; durations differ).
    assert _summary(clean).split(" in ")[0] == _summary(hostile).split(" in ")[0]


def test_the_application_settings_of_the_shell_are_gone_for_the_tests() -> None:
    leaked = [name for name in os.environ if name.startswith("CNR_") and name in HOSTILE]
    assert leaked == []
    from storage.settings import Settings

    assert Settings().campaign is None and Settings().timezone == "Europe/Paris"
