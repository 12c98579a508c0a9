"""Whole-process time of `ocplan validate` on the dev set (goal: <= 3 s).

    .venv/bin/python bench/bench_validate.py [runs]
"""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
GOAL_S = 3.0


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    exe = ROOT / ".venv" / "bin" / "ocplan"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(exe), "validate", str(CSV), "--format", "json"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    with CSV.open(newline="", encoding="utf-8") as fh:
        cases = sum(1 for _ in csv.DictReader(fh))
    print(f"ocplan validate ({cases} cases, whole process): median {median:.2f} s over {runs} "
          "runs;"
          f" goal <= {GOAL_S:.0f} s: {'PASS' if median <= GOAL_S else 'MISS'}")
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
