"""Benchmark of the command line's start: how long a citizen or an operator waits.

Prints the wall time (median of ``--runs`` runs, with the fastest and slowest) of
  * ``python -c pass``: the interpreter alone, the baseline measured in the same run;
  * ``cnrbot --help`` (target <= 0.3 s);
  * ``cnrbot chat`` until its first prompt appears on stdout (target <= 0.6 s), on a temporary
    SQLite database already migrated and loaded with the shipped campaign (a first run does
    it, not timed), ``--date`` inside the campaign's dates;
and what each costs above the baseline. ``CNR_*`` variables of the shell are not passed on.

    .venv/bin/python bench/cli_startup.py [--runs 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DATE = "2022-11-20"  # within the shipped campaign's dates (14 November - 31 December 2022)
TARGETS = {"help": 0.3, "chat": 0.6}


def cnrbot() -> list[str]:
    """The ``cnrbot`` script installed beside this interpreter, as a citizen runs it;
    ``python -m bot.cli`` when it is not installed."""
    script = Path(sys.executable).with_name("cnrbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def environment(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env["CNR_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    return env


def run_to_end(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from start to exit of ``argv`` (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        check=True,
    )
    return time.perf_counter() - start


def first_prompt(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from start until ``argv`` writes its first line on stdout; then its input ends
    and it exits. Fails when it writes nothing or anything on stderr."""
    errors = cwd / "stderr.txt"
    with errors.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd
        )
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        elapsed = time.perf_counter() - start
        process.stdin.close()
        process.stdout.read()
        process.wait(timeout=60)
    if not line.strip() or process.returncode != 0 or errors.stat().st_size:
        raise SystemExit(
            f"{' '.join(argv)}: no first prompt (exit {process.returncode}, first line "
            f"{line!r}, stderr {errors.read_text(errors='replace')[-500:]!r})"
        )
    return elapsed


def measure(runs: int, once: Callable[[], float]) -> list[float]:
    once()  # warm: the file cache, the bytecode caches
    return [once() for _ in range(runs)]


def line(label: str, times: list[float], baseline: float | None, target: float | None) -> str:
    median = statistics.median(times)
    text = f"  {label:<28} {median:>6.3f} s  ({min(times):.3f}-{max(times):.3f})"
    if baseline is not None:
        text += f"  +{median - baseline:.3f} s over the interpreter"
    if target is not None:
        text += f"  target <= {target} s: {'met' if median <= target else 'NOT met'}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="timed runs of each (median)")
    args = parser.parse_args()

    command = cnrbot()
    with tempfile.TemporaryDirectory(prefix="cnr-cli-bench-") as tmp:
        cwd = Path(tmp)
        env = environment(cwd / "cnr.db")
        chat = [*command, "chat", "--date", DATE]
        # a first run creates, migrates and loads the database (and the local user's id)
        subprocess.run(chat, input=b"", capture_output=True, env=env, cwd=cwd, check=True)

        python = measure(args.runs, lambda: run_to_end([sys.executable, "-c", "pass"], env, cwd))
        help_ = measure(args.runs, lambda: run_to_end([*command, "--help"], env, cwd))
        prompt = measure(args.runs, lambda: first_prompt(chat, env, cwd))

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}; {os.cpu_count()} cores, load {load}; "
        f"median of {args.runs} runs (fastest-slowest); command: {' '.join(command)}"
    )
    base = statistics.median(python)
    print(line("python -c pass (baseline)", python, None, None))
    print(line("cnrbot --help", help_, base, TARGETS["help"]))
    print(line("cnrbot chat, first prompt", prompt, base, TARGETS["chat"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
