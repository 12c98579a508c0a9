"""Wall time of ``ocplan match`` over the whole CPU catalog, as a whole process (goal:
at most 1 s, issue 12): every compute module and every CPU as a generic module, each
archetype of examples/cloud-mix.yaml predicted by the CPU model.

    .venv/bin/python bench/bench_match.py [repeats]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 1.0
ROOT = Path(__file__).resolve().parents[1]


def main(repeats: int = 3) -> int:
    argv = [sys.executable, "-m", "ocplan.cli.main", "match", "--workload",
            str(ROOT / "examples" / "cloud-mix.yaml"), "--format", "json"]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    ok = best <= GOAL_S
    print(f"ocplan match over the catalog: {best:.2f} s as a whole process (best of "
          f"{repeats}; goal <= {GOAL_S:.0f} s): {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
