"""Median whole-process wall time of one ``ocplan search`` (goal: <= 2 s, issue 9).

    .venv/bin/python bench/bench_search.py [repeats]

Runs ``ocplan search --model gpt3-175b --chip a100-sxm-80gb --chips 512 --global-batch
1536 --seq-len 2048 --format json`` as a subprocess (interpreter start, imports, catalog
load and the search itself), ``repeats`` times (default 3).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 2.0
ROOT = Path(__file__).resolve().parents[1]
ARGS = ["search", "--model", "gpt3-175b", "--chip", "a100-sxm-80gb", "--chips", "512",
        "--global-batch", "1536", "--seq-len", "2048", "--format", "json"]


def _command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "ocplan"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ocplan")
    return [found] if found else [sys.executable, "-m", "ocplan.cli.main"]


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    cmd = _command() + ARGS
    times = []
    data: dict[str, object] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            print(f"search failed (exit {proc.returncode}): {proc.stderr.strip()}")
            return 1
        data = json.loads(proc.stdout)
    median = statistics.median(times)
    print(f"search space {data['space_size']:,} layouts, {data['evaluated']:,} evaluated, "
          f"{data['feasible']:,} fit; in-process search {data['elapsed_s']:.2f} s")
    print(f"ocplan search (whole process): median {median:.2f} s over {repeats} "
          f"(min {min(times):.2f} s, max {max(times):.2f} s); goal <= {GOAL_S:.0f} s: "
          f"{'met' if median <= GOAL_S else 'MISSED'}")
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
