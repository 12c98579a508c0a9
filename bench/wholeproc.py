"""Timing ``ocplan`` as a whole process, as a user starts it.

A user's Python writes bytecode caches (``__pycache__``) on the first run and reads them
afterwards; a shell with ``PYTHONDONTWRITEBYTECODE=1`` (as some CI images and this
project's sandbox set) recompiles every module at every start, about 0.3 s more on two
cores. The children here run without that variable, after one untimed warm-up run that
writes the caches, so the figure is the one a user sees from the second run on. The
children's CPU time (user + system) is returned beside the wall time: on a shared machine
the wall time moves with the load, the CPU time much less.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ROOT", "Timed", "ocplan_command", "run_timed"]

ROOT = Path(__file__).resolve().parents[1]


def ocplan_command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "ocplan"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ocplan")
    return [found] if found else [sys.executable, "-m", "ocplan.cli.main"]


class Timed:
    """Wall and CPU seconds of each timed run, and the last run's standard output."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.stdout = ""


def run_timed(args: list[str], repeats: int) -> Timed:
    """Run ``ocplan ARGS`` once untimed, then ``repeats`` times timed; raises
    RuntimeError on a failed run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    timed = Timed()
    for i in range(repeats + 1):
        before = os.times()
        t0 = time.perf_counter()
        proc = subprocess.run(ocplan_command() + args, capture_output=True, text=True,
                              check=False, env=env)
        wall = time.perf_counter() - t0
        after = os.times()
        if proc.returncode != 0:
            raise RuntimeError(f"ocplan {args[0]} failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        if i == 0:
            continue
        timed.walls.append(wall)
        timed.cpus.append((after.children_user - before.children_user)
                          + (after.children_system - before.children_system))
        timed.stdout = proc.stdout
    return timed
