"""Serving speed goals of issue 10:

- one analytical serving estimate in-process: median <= 1 ms;
- a 10,000-request simulation of one instance with the real step model: <= 2 s;
- the SLO search for Llama 3.1 70B on one 8-accelerator OAM server (the NF5698G7 MI300X
  example) as a whole process: <= 5 s.

    .venv/bin/python bench/bench_serving.py [repeats]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.serving.dynamics import simulate_serving
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

ROOT = Path(__file__).resolve().parents[1]
ESTIMATE_GOAL_S = 1e-3
SIMULATION_GOAL_S = 2.0
SEARCH_GOAL_S = 5.0
SIMULATED_REQUESTS = 10_000


def _report(name: str, value_s: float, goal_s: float) -> bool:
    ok = value_s <= goal_s
    print(f"{name}: {value_s * 1e3:,.1f} ms; goal <= {goal_s * 1e3:,.0f} ms: "
          f"{'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cat = load_catalog()
    system = system_for_chip(cat, "h200-sxm-141gb", 8)
    shape = ModelShape.from_arch(cat.model("llama3-70b"))
    fmt = dict(weight_precision="fp8", activation_precision="fp8", kv_precision="fp8")
    wl = ServingWorkload(shape, 1000, 1000, **fmt)  # type: ignore[arg-type]
    plan = ServingPlan(tp=8)
    estimate_serving(wl, plan, system)  # warm the system model
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate_serving(wl, plan, system)
        times.append(time.perf_counter() - t0)
    ok = _report("analytical estimate (median)", statistics.median(times), ESTIMATE_GOAL_S)

    poisson = ServingWorkload(shape, 1000, 300, load="poisson", rate_per_s=6.0,
                              length_distribution="exponential", **fmt)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    sim = simulate_serving(poisson, plan, system, requests=SIMULATED_REQUESTS)
    elapsed = time.perf_counter() - t0
    assert sim is not None
    ok &= _report(f"simulation of {SIMULATED_REQUESTS:,} requests "
                  f"({sim.result.iterations:,} iterations)", elapsed, SIMULATION_GOAL_S)

    cmd = [str(ROOT / ".venv" / "bin" / "ocplan"), "infer", "--model", "llama3-70b",
           "--system", str(ROOT / "examples" / "nf5698g7-mi300x.yaml"), "--chips", "8",
           "--input-len", "2048", "--output-len", "512", "--load", "poisson", "--rate", "5",
           "--slo-ttft", "2s", "--slo-tpot", "50ms", "--weight-precision", "fp8",
           "--activation-precision", "fp8", "--kv-precision", "fp8", "--search"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    ok &= _report("SLO search, Llama 3.1 70B on 8 x MI300X (whole process)",
                  time.perf_counter() - t0, SEARCH_GOAL_S)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
