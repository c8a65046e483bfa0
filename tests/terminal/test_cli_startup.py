"""A fast command line: ``cnrbot --help`` and the first prompt of ``cnrbot chat`` import none
of the stacks they do not use (each subcommand's module is imported when it runs), and no
library's warning reaches a citizen's terminal. The times are in ``bench/cli_startup.py``."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import bot.commands
from bot.cli import COMMANDS, main

#: Packages neither ``cnrbot --help`` nor the terminal chat needs.
HEAVY = (
    "aiohttp",
    "jinja2",
    "telegram",
    "docx",
    "odf",
    "openpyxl",
    "exporter",
    "moderation",
    "bot.web",
    "bot.telegram",
)
MARK = "--- modules ---"
#: Runs ``cnrbot ARGS...`` in this process, then prints the names of the modules it loaded.
PROBE = f"""
import sys
import bot.cli
try:
    bot.cli.main(sys.argv[1:])
except SystemExit:
    pass
print({MARK!r})
print("\\n".join(sorted(sys.modules)))
"""
DATE = "2022-11-20"  # within the shipped campaign's dates
TIMEOUT = 60


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        CNR_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/cnr.db",
        CNR_SECRET_KEY="cli-startup-test-secret",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_python(
    tmp_path: Path, argv: list[str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``python ARGV...`` in ``tmp_path``, on a database there, ``stdin`` as its input."""
    return subprocess.run(
        [sys.executable, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=TIMEOUT,
        check=False,
    )


def run_cnrbot(
    tmp_path: Path, args: list[str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_python(tmp_path, ["-m", "bot.cli", *args], stdin)


def loaded_modules(tmp_path: Path, args: list[str]) -> tuple[str, set[str]]:
    """What ``cnrbot ARGS`` printed before the probe's list, and the modules it loaded."""
    # no input: the chat stops at its first prompt
    result = run_python(tmp_path, ["-c", PROBE, *args])
    assert result.returncode == 0, result.stderr
    assert MARK in result.stdout, result.stdout + result.stderr
    printed, modules = result.stdout.split(MARK + "\n", 1)
    return printed, set(modules.split())


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_every_command_module_has_a_summary() -> None:
    modules = {info.name for info in pkgutil.iter_modules(bot.commands.__path__)}
    assert modules == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_is_registered_by_its_module(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: cnrbot {name} ")


def test_help_lists_every_command_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    listed = " ".join(capsys.readouterr().out.split())
    for name, summary in COMMANDS.items():
        assert f"{name} {summary}" in listed


def test_an_unknown_command_is_refused_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_help_loads_no_command_stack(tmp_path: Path) -> None:
    printed, modules = loaded_modules(tmp_path, ["--help"])
    assert "chat" in printed and "export" in printed
    assert "bot.cli" in modules
    assert heavy_in(modules) == []
    assert not any(m.startswith("bot.commands.") for m in modules)


def test_first_chat_prompt_loads_no_web_export_console_or_telegram(tmp_path: Path) -> None:
    printed, modules = loaded_modules(tmp_path, ["chat", "--date", DATE])
    assert "CNR Santé" in printed  # the welcome was shown
    assert "bot.terminal" in modules  # the probe did run the chat
    assert heavy_in(modules) == []


# --- what a citizen's terminal shows ------------------------------------------------------

#: Lines a citizen may type that the conversation does not expect, at every step they reach.
ODD_LINES = [
    "/back",
    "/cancel",
    "/erase",
    "/resume",
    "/send",
    "/start NOWHERE",
    "/",
    "//",
    "/passer",
    "99",
    "0",
    "-1",
    "",
    "   ",
    "\x00\x1b[31m\u202e",
    "é" * 5000,
    "1",  # accept
    "/back",
    "/back",
    "/cancel",
    "Oise",
    "/language",
    "zz",
    "/delete",
    "2",  # no, keep my data
    "2",  # theme 2
    "/skip",
    "trop court",
    "日本語のテキストを書いています。これは地域の医療についての意見です。",
    "/cancel",
    "/cancel",
    "1",
    "/mine",
    "/inconnu",
    "/delete",
    "1",  # yes, erase
    "/back",
]


@pytest.mark.parametrize("date", [DATE, "2023-06-01"], ids=["open", "closed"])
def test_odd_input_writes_nothing_on_stderr(tmp_path: Path, date: str) -> None:
    # stopped at the privacy notice, then started again there (transitions once warned
    # "Can't trigger event greet from state consent!" on the terminal at this restart)
    stopped = run_cnrbot(tmp_path, ["chat", "--date", date])
    assert stopped.returncode == 0 and stopped.stderr == ""
    result = run_cnrbot(tmp_path, ["chat", "--date", date], "\n".join(ODD_LINES) + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("> ") >= len(ODD_LINES)  # every line was read and answered
    assert result.stderr == ""


#: ``cnrbot chat`` where each line handled also makes libraries log and warn, and this
#: project log a warning of its own.
NOISY_CHAT = """
import logging, sys, warnings
import bot.cli
from storage.service import DialogService

handle = DialogService.handle

async def noisy(self, *args, **kwargs):
    logging.getLogger("transitions.core").warning("Can't trigger event back from state new!")
    logging.getLogger("sqlalchemy.pool.impl").error("a library's error")
    warnings.warn("a library's Python warning", RuntimeWarning)
    logging.getLogger("storage.service").warning("our own one-line warning")
    return await handle(self, *args, **kwargs)

DialogService.handle = noisy
sys.exit(bot.cli.main(sys.argv[1:]))
"""


def noisy_chat(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    argv = ["-c", NOISY_CHAT, *options, "chat", "--date", DATE]
    return run_python(tmp_path, argv, "/back\n1\n")


def test_library_log_lines_and_warnings_never_reach_the_terminal(tmp_path: Path) -> None:
    result = noisy_chat(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CNR Santé" in result.stdout
    assert "our own one-line warning" in result.stderr  # ours are shown
    for library in ("Can't trigger event", "a library's error", "a library's Python warning"):
        assert library not in result.stderr


def test_verbose_chat_shows_the_libraries(tmp_path: Path) -> None:
    result = noisy_chat(tmp_path, "-v")
    assert result.returncode == 0, result.stderr
    assert "Can't trigger event" in result.stderr
    assert "a library's Python warning" in result.stderr
