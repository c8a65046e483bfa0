"""The terminal chat: rendering, typed input, and ``cnrbot chat`` end to end through a pipe
(a real process, a real SQLite file created, migrated and loaded on first run)."""

from __future__ import annotations

import io
import os
import pty
import queue
import select
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from bot.terminal import TerminalSession, render, run_chat
from dialogs.messages import t
from dialogs.model import Choice, ChoiceEvent, CommandEvent, Reply, TextEvent
from storage.settings import Settings

DATE = "2022-11-20"  # within the default campaign's dates
NEED = "Il manque des médecins traitants dans ma commune depuis plusieurs années."
SOLUTION = "Créer une maison de santé pluriprofessionnelle près de la gare."
NEED_EN = "There is no general practitioner left in my town since the last one retired."
SOLUTION_EN = "Open a community health centre with salaried doctors and nurses."
TIMEOUT = 60


# --- units --------------------------------------------------------------------------------


def test_render_wraps_for_a_narrow_terminal() -> None:
    long = "Voici un texte assez long pour devoir être replié sur plusieurs lignes étroites."
    out = render(
        [Reply(long + "\n\nSecond paragraphe.", (Choice("a", "Un choix au libellé long " * 3),))],
        30,
    )
    lines = out.splitlines()
    assert all(len(line) <= 30 for line in lines), out
    assert "" in lines  # paragraphs stay apart
    assert any(line.startswith("  1. Un choix") for line in lines)
    assert "Second paragraphe." in out


def test_render_numbers_align() -> None:
    out = render([Reply("Q", tuple(Choice(str(i), f"c{i}") for i in range(12)))], 80)
    assert "   1. c0" in out and "  12. c11" in out


def test_typed_numbers_labels_and_commands() -> None:
    term = TerminalSession()
    term.shown([Reply("Q", (Choice("t:OISE", "Oise"), Choice("t:MF", "Métropole-Flandres")))], 7)
    assert term.event_for("2") == ChoiceEvent("t:MF", 7)
    assert term.event_for(" 1 ") == ChoiceEvent("t:OISE", 7)
    assert term.event_for("metropole-flandres") == ChoiceEvent("t:MF", 7)
    assert term.event_for("  OISE ") == ChoiceEvent("t:OISE", 7)
    assert term.event_for("3") == TextEvent("3")  # not a choice: the dialog answers it
    assert term.event_for("0") == TextEvent("0")
    assert term.event_for("/back") == CommandEvent("back")
    assert term.event_for("59000") == TextEvent("59000")
    assert term.event_for("") == TextEvent("")
    term.shown([Reply("free text now")], 8)
    assert term.event_for("1") == TextEvent("1")


# --- end to end ---------------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        CNR_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/cnr.db",
        CNR_SECRET_KEY="terminal-test-secret",
        PYTHONUNBUFFERED="1",
        COLUMNS="60",
    )
    return env


def _cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", "chat", "--date", DATE, *extra]


def chat(tmp_path: Path, lines: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cmd(*extra),
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=TIMEOUT,
        check=False,
    )


def db_rows(tmp_path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "cnr.db") as conn:
        return conn.execute(query).fetchall()


def test_full_contribution_in_french(tmp_path: Path) -> None:
    result = chat(
        tmp_path,
        [
            "1",  # accept
            "Oise",  # a label, typed
            "2",  # theme 2
            NEED,
            "/help",  # a command mid-step
            SOLUTION,
            "1",  # skip levers
            "3",  # health professional
            "1",  # send
        ],
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "HDF-OISE-000001" in result.stdout
    rows = db_rows(
        tmp_path,
        "select c.reference, t.code, th.code, c.need, c.solution, c.levers, c.profile,"
        " c.language, c.channel, c.status, c.consent_version"
        " from contributions c join territories t on t.id = c.territory_id"
        " join themes th on th.id = c.theme_id",
    )
    assert rows == [
        (
            "HDF-OISE-000001", "OISE", "2", NEED, SOLUTION, None, "pro-sante",
            "fr", "terminal", "pending", "2022-11-v1",
        )
    ]  # fmt: skip
    # the local user id is kept next to the database, never stored in it
    user_id = (tmp_path / "cnr.db.terminal-user").read_text().strip()
    assert user_id and user_id.encode() not in (tmp_path / "cnr.db").read_bytes()
    assert db_rows(tmp_path, "select code from campaigns") == [("HDF-2022",)]
    # every reply line fits a narrow terminal
    assert max(len(line) for line in result.stdout.splitlines() if not line.startswith(">")) <= 88


def test_full_contribution_in_english(tmp_path: Path) -> None:
    result = chat(
        tmp_path,
        [
            "I accept",  # the label, typed
            "7",  # Littoral Nord
            "Regular doctor",  # theme 1 by its label
            NEED_EN,
            SOLUTION_EN,
            "Train and hire more doctors and nurses in the area, with housing help.",
            "i'd RATHER not say",
            "Send",
        ],
        "--lang",
        "en",
        "--user",
        "alice",
    )
    assert result.returncode == 0, result.stderr
    assert "HDF-LITTORAL-NORD-000001" in result.stdout
    assert "Thank you" in result.stdout
    rows = db_rows(tmp_path, "select reference, language, need, levers, profile from contributions")
    assert rows == [
        (
            "HDF-LITTORAL-NORD-000001",
            "en",
            NEED_EN,
            "Train and hire more doctors and nurses in the area, with housing help.",
            None,
        )
    ]
    assert db_rows(tmp_path, "select lang, consent_version from participants") == [
        ("en", "2022-11-v1")
    ]
    assert b"alice" not in (tmp_path / "cnr.db").read_bytes()


def test_hostile_lines_through_the_pipe(tmp_path: Path) -> None:
    arabic = "\u202eمرحبا بكم في المركز الصحي الجديد\u202c"
    result = chat(
        tmp_path,
        [
            "",
            "   ",
            "\u200b\u200b",
            "1",  # accept
            "99",  # no such choice (nor territory)
            "🙂🙂🙂",
            "2",  # Oise
            "1",  # theme 1
            "x" * 5000,  # too long
            "!!!!!!!!!!!!!!!!!!!!!!!!",  # punctuation only
            "\x00\x00\x00",
            "🙂🙂🙂",
            NEED + "\x00\u200b",  # accepted, cleaned
            "<script>alert(1)</script>'; DROP TABLE participants; --",
            "/back",  # back to the solution
            arabic,
            "1",  # skip levers
            "8",  # no profile
            "1",  # send
        ],
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "\x00" not in result.stdout
    assert all(len(line) <= 88 for line in result.stdout.splitlines())
    rows = db_rows(tmp_path, "select reference, need, solution, levers from contributions")
    assert len(rows) == 1, result.stdout[-3000:]
    reference, need, solution, levers = rows[0]
    assert reference == "HDF-OISE-000001"
    assert need == NEED
    assert "مرحبا بكم" in str(solution) and "DROP TABLE" not in str(solution)
    assert levers is None
    assert db_rows(tmp_path, "select count(*) from participants") == [(1,)]


def test_end_of_input_at_once(tmp_path: Path) -> None:
    result = chat(tmp_path, [])
    assert result.returncode == 0, result.stderr
    assert "1. J'accepte" in result.stdout
    # the notice waits for an answer; nothing else is kept
    assert db_rows(tmp_path, "select consent_version from participants") == [(None,)]
    assert db_rows(tmp_path, "select count(*) from contributions") == [(0,)]


def test_declining_in_the_terminal_leaves_no_row(tmp_path: Path) -> None:
    result = chat(tmp_path, ["2"])
    assert result.returncode == 0, result.stderr
    assert db_rows(tmp_path, "select count(*) from participants") == [(0,)]
    assert db_rows(tmp_path, "select count(*) from conversations") == [(0,)]


class Running:
    """A ``cnrbot chat`` process fed line by line, its output read by a thread."""

    def __init__(self, tmp_path: Path) -> None:
        self.proc = subprocess.Popen(
            _cmd(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_env(tmp_path),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, marker: str) -> None:
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                raise AssertionError(f"output ended before {marker!r}: {''.join(self.seen)}")
            self.seen.append(line)
            if marker in line:
                return


def test_resume_after_the_process_is_killed(tmp_path: Path) -> None:
    run = Running(tmp_path)
    try:
        run.wait_for("1. J'accepte")
        for line in ("1", "Oise", "2", NEED):
            run.send(line)
        run.wait_for("Quelle solution concrète")  # the need is stored
        run.proc.kill()  # no chance to clean up
        run.proc.wait(timeout=TIMEOUT)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    result = chat(tmp_path, [SOLUTION, "1", "8", "1"])
    assert result.returncode == 0, result.stderr
    first_reply = result.stdout.split("> ")[0]
    assert "Quelle solution concrète" in first_reply  # picks up where it stood
    rows = db_rows(tmp_path, "select reference, need, solution from contributions")
    assert rows == [("HDF-OISE-000001", NEED, SOLUTION)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_cleanly_and_keeps_the_state(tmp_path: Path) -> None:
    run = Running(tmp_path)
    try:
        run.wait_for("1. J'accepte")
        run.send("1")
        run.wait_for("Dans quel territoire")
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(timeout=TIMEOUT) == 0
        assert run.proc.stderr is not None
        assert "Traceback" not in run.proc.stderr.read()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert db_rows(tmp_path, "select state from conversations") == [("territory",)]


class LockingInput(io.StringIO):
    """Piped input that holds an exclusive lock on the database while one given line is
    handled (a real SQLite outage: every write is refused with "database is locked")."""

    def __init__(self, lines: list[str], db: Path, locked_line: int) -> None:
        super().__init__("".join(line + "\n" for line in lines))
        self.db = db
        self.locked_line = locked_line
        self.count = 0
        self.lock: sqlite3.Connection | None = None

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if self.lock is not None:
            self.lock.rollback()
            self.lock.close()
            self.lock = None
        self.count += 1
        if self.count == self.locked_line:
            self.lock = sqlite3.connect(self.db, isolation_level=None)
            self.lock.execute("BEGIN EXCLUSIVE")
        return super().readline(size if size is not None else -1)


def test_database_outage_during_a_line(tmp_path: Path, sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"sqlite_busy_timeout_ms": 50})
    db = tmp_path / "cnr.db"
    lines = ["1", "Oise", "2", NEED, SOLUTION, SOLUTION, "1", "8", "1"]
    stdin = LockingInput(lines, db, locked_line=5)  # the first SOLUTION meets the outage
    out = io.StringIO()
    assert run_chat(settings, user_id="outage", stdin=stdin, out=out, today=date(2022, 11, 20)) == 0
    transcript = " ".join(out.getvalue().split())
    assert transcript.count(" ".join(t("fr", "channel.error").split())) == 1, transcript
    # the line met by the outage was not stored; typed again, it was
    rows = db_rows(tmp_path, "select reference, need, solution, levers, profile from contributions")
    assert rows == [("HDF-OISE-000001", NEED, SOLUTION, None, None)]


class Tty:
    """``cnrbot chat`` in a real pseudo-terminal (interactive mode: prompt, Ctrl-C key)."""

    def __init__(self, tmp_path: Path, columns: int) -> None:
        env = _env(tmp_path)
        env["COLUMNS"] = str(columns)
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes cnrbot chat on the terminal
            os.chdir(tmp_path)
            os.execve(sys.executable, _cmd(), env)
        self.pid, self.fd = pid, fd
        self.output = ""

    def read_until(self, marker: str) -> str:
        while marker not in self.output:
            ready, _, _ = select.select([self.fd], [], [], TIMEOUT)
            if not ready:
                raise AssertionError(f"no {marker!r} in time: {self.output[-2000:]}")
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {marker!r}: {self.output[-2000:]}")
            self.output += chunk.decode("utf-8", "replace")
        return self.output

    def type(self, text_: str) -> None:
        os.write(self.fd, text_.encode())

    def wait(self) -> int:
        # drain what is left so the child never blocks on a full terminal
        while True:
            ready, _, _ = select.select([self.fd], [], [], TIMEOUT)
            if not ready:
                break
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk.decode("utf-8", "replace")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")
def test_interactive_terminal_narrow_and_ctrl_c(tmp_path: Path) -> None:
    tty = Tty(tmp_path, columns=40)
    status: int | None = None
    try:
        tty.read_until("> ")  # the prompt, after the welcome
        tty.type("1\n")
        tty.read_until("Littoral Nord")
        tty.type("\x03")  # Ctrl-C, as typed
        status = tty.wait()
    finally:
        if status is None:
            os.kill(tty.pid, signal.SIGKILL)
            os.waitpid(tty.pid, 0)
    assert status == 0
    out = tty.output
    assert "Traceback" not in out
    # wrapped for 40 columns (the terminal adds \r)
    assert max(len(line.rstrip("\r")) for line in out.split("\n")) <= 40, out
    assert db_rows(tmp_path, "select state from conversations") == [("territory",)]


def test_chat_options_are_checked(tmp_path: Path) -> None:
    bad_date = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--date", "20/11/2022"],
        input="",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=TIMEOUT,
        check=False,
    )
    assert bad_date.returncode == 2 and "--date" in bad_date.stderr
    assert not (tmp_path / "cnr.db").exists()
    odd_user = chat(tmp_path, ["1"], "--user", "\u202e🙂 <b>x</b>'; --")
    assert odd_user.returncode == 0, odd_user.stderr
    assert db_rows(
        tmp_path, "select count(*) from participants where consent_version is not null"
    ) == [(1,)]
    assert "🙂".encode() not in (tmp_path / "cnr.db").read_bytes()
