"""What the cluster outlook (facility + goodput) adds to an in-process estimate (goal:
at most 0.1 ms, issue 13).

GPT-3 175B in fp8 on the 1,024-accelerator liquid example (which names its checkpoint
storage), the same System object reused as a search or a page does: the median time of
:func:`ocplan.results.cluster.cluster_outlook` on an estimate's result, beside the
estimate's own, and of the outlook's two parts alone (the facility plan uncached, as for
a first call on a new system).

    .venv/bin/python bench/bench_cluster.py [calls]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import load_system
from ocplan.facility.plan import _plan
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan
from ocplan.reliability import checkpoint_bytes, counts_for_chips, goodput
from ocplan.results.cluster import cluster_outlook
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

GOAL_S = 1e-4
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ubb-1024-liquid.yaml"


def median_s(run: Callable[[], object], calls: int) -> float:
    run()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(calls: int = 300) -> int:
    cat = load_catalog()
    system = load_system(EXAMPLE, cat)
    wl = Workload(ModelShape.from_arch(cat.model("gpt3-175b")), 2048, 1536, "fp8")
    plan = Plan(tp=8, pp=8, vpp=6, dp=16, micro_batch=1, zero=1)
    result = estimate(wl, plan, system)
    assert system.spec.storage is not None
    storage = system.spec.storage
    alone = median_s(lambda: estimate(wl, plan, system), calls)
    # what the outlook adds is its own time on the estimate's result (the difference of
    # two medians of the much longer estimate is mostly noise on a shared machine)
    added = median_s(lambda: cluster_outlook(result, wl, system, 300e9, 2.0), calls)
    facility_first = median_s(lambda: _plan(system, 1.0), calls)
    reliability = median_s(lambda: goodput(result.time_to_train_s(300e9),
                                           counts_for_chips(system, 1024),
                                           checkpoint_bytes(wl.model.total_params), storage),
                           calls)
    ok = added <= GOAL_S
    print(f"estimate {alone * 1e3:.3f} ms; the cluster outlook adds {added * 1e3:.3f} ms "
          f"(goal <= {GOAL_S * 1e3:.1f} ms): {'PASS' if ok else 'MISS'}")
    print(f"  parts: goodput {reliability * 1e3:.3f} ms; facility plan on a new system "
          f"{facility_first * 1e3:.3f} ms (cached per System afterwards)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
