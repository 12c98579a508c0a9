"""Median wall time of one in-process estimate (goal: <= 0.3 ms, issue 9).

    .venv/bin/python bench/bench_estimate.py [repeats]
"""

from __future__ import annotations

import statistics
import sys
import time

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

GOAL_S = 0.3e-3


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    cat = load_catalog()
    system = system_for_chip(cat, "h100-sxm-80gb", 1024)
    wl = Workload(ModelShape.from_arch(cat.model("gpt3-175b")), 2048, 1536, "bf16")
    plan = Plan(tp=8, pp=8, dp=16, vpp=6, micro_batch=1, zero=1, recompute="selective")
    estimate(wl, plan, system)  # warm caches (system model, fabric)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate(wl, plan, system)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"estimate: median {median * 1e3:.3f} ms over {repeats} "
          f"(p90 {sorted(times)[int(0.9 * repeats)] * 1e3:.3f} ms); goal <= {GOAL_S * 1e3:.1f} ms:"
          f" {'met' if median <= GOAL_S else 'MISSED'}")
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
