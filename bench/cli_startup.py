"""Benchmark of the command line's start: how long a citizen or an operator waits.

Prints the wall time (median of ``--runs`` runs, with the fastest and slowest) and the CPU
time (user + system, to the process's exit; steadier than the wall time on a busy machine) of
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
import resource
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


#: A run's (wall, CPU) seconds.
Times = tuple[float, float]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_to_end(argv: list[str], env: dict[str, str], cwd: Path) -> Times:
    """Seconds from start to exit of ``argv`` (its output discarded), and its CPU seconds."""
    cpu = cpu_of_children()
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
    return time.perf_counter() - start, cpu_of_children() - cpu


def first_prompt(argv: list[str], env: dict[str, str], cwd: Path) -> Times:
    """Seconds from start until ``argv`` writes its first line on stdout; then its input ends
    and it exits (its CPU seconds are counted to the exit). Fails when it writes nothing or
    anything on stderr."""
    errors = cwd / "stderr.txt"
    cpu = cpu_of_children()
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
    return elapsed, cpu_of_children() - cpu


def measure(runs: int, once: Callable[[], Times]) -> list[Times]:
    once()  # warm: the file cache, the bytecode caches
    return [once() for _ in range(runs)]


def line(label: str, runs: list[Times], baseline: float | None, target: float | None) -> str:
    wall = [w for w, _ in runs]
    median = statistics.median(wall)
    text = (
        f"  {label:<27} {median:>6.3f} s ({min(wall):.3f}-{max(wall):.3f})"
        f"  CPU {statistics.median(c for _, c in runs):.3f} s"
    )
    if baseline is not None:
        text += f"  +{median - baseline:.3f} s"
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
    base = statistics.median(w for w, _ in python)
    print("  (wall: median (fastest-slowest); CPU: median; + : wall over the interpreter's)")
    print(line("python -c pass (baseline)", python, None, None))
    print(line("cnrbot --help", help_, base, TARGETS["help"]))
    print(line("cnrbot chat, first prompt", prompt, base, TARGETS["chat"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
