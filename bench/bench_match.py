"""Wall time of ``ocplan match`` over the whole CPU catalog, as a whole process (goal:
at most 1 s, issue 12): every compute module and every CPU as a generic module, each
archetype of examples/cloud-mix.yaml predicted by the CPU model.

    .venv/bin/python bench/bench_match.py [repeats]

How the process is timed (bytecode caches, CPU time): :mod:`wholeproc`.
"""

from __future__ import annotations

import json
import statistics
import sys

from wholeproc import ROOT, run_timed

GOAL_S = 1.0


def main(repeats: int = 5) -> int:
    timed = run_timed(["match", "--workload", str(ROOT / "examples" / "cloud-mix.yaml"),
                       "--format", "json"], repeats)
    ranked = json.loads(timed.stdout)["platforms"]
    median = statistics.median(timed.walls)
    ok = median <= GOAL_S
    print(f"ocplan match over the catalog ({len(ranked)} platforms): median "
          f"{median:.2f} s as a whole process (min {min(timed.walls):.2f} s over {repeats}; "
          f"CPU median {statistics.median(timed.cpus):.2f} s); goal <= {GOAL_S:.0f} s: "
          f"{'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
