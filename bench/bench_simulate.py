"""Wall time of a 10,000-request serving simulation (goal: <= 2 s each).

Two runs of :func:`ocplan.serving.simulate.simulate`, each timed as the best of a few
repeats: an offline batch (input 1000, output 200 tokens, all arriving at t = 0) and a
Poisson run with lognormal prompts and exponential outputs at a busy, stable load.

    .venv/bin/python bench/bench_simulate.py [repeats]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ocplan.serving.simulate import (
    LengthDistribution,
    Requests,
    Scheduler,
    SimResult,
    offline_requests,
    poisson_requests,
    simulate,
)

GOAL_S = 2.0
N_REQUESTS = 10_000
SCHEDULER = Scheduler(max_seqs=256, max_batched_tokens=8192, kv_capacity_tokens=1e12)
POISSON_RATE_PER_S = 60.0  # busy but stable: about 150 sequences decode per iteration


def step_time(prefill_tokens: float, decode_seqs: float, decode_context_tokens: float) -> float:
    """A cheap affine iteration time (s): fixed launch cost, per prompt token, per decode
    sequence and per context token read."""
    return 0.01 + 1e-6 * prefill_tokens + 2e-5 * decode_seqs + 1e-9 * decode_context_tokens


def best_time(run: Callable[[], SimResult], repeats: int) -> tuple[float, SimResult]:
    best = float("inf")
    result = run()
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t0)
    return best, result


def report(name: str, requests: Requests, repeats: int) -> bool:
    seconds, res = best_time(lambda: simulate(requests, step_time, SCHEDULER), repeats)
    ok = seconds <= GOAL_S
    print(f"{name}: {seconds:.3f} s for {res.n:,} requests, {res.iterations:,} iterations "
          f"({seconds / res.iterations * 1e6:.1f} us/iteration; mean batch "
          f"{res.mean_batch:.0f}, {res.output_tokens_per_s:,.0f} output tok/s simulated); "
          f"goal <= {GOAL_S:.0f} s: {'PASS' if ok else 'MISS'}")
    return ok


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    offline = offline_requests(N_REQUESTS, 1000, 200)
    poisson = poisson_requests(N_REQUESTS, POISSON_RATE_PER_S,
                               LengthDistribution("lognormal", 1000, 0.5, high=8000),
                               LengthDistribution("exponential", 200, high=2000), seed=1)
    ok = report("offline", offline, repeats)
    ok = report("poisson", poisson, repeats) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
