"""The analytical serving steady state against the discrete-event simulation, under
Poisson arrivals.

Usage::

    .venv/bin/python scripts/serving_vs_simulation.py    # writes docs/serving-simulation.md

The simulation (:mod:`ocplan.serving.simulate`) schedules one instance request by request
with the same step model: what it gives is the queueing the analytical path
(:mod:`ocplan.serving.steady`) approximates, with no hardware question in between. Each
load of a grid (three models on one chip each, prompt and answer lengths from
answer-heavy to prompt-heavy, at three shares of the layout's offline capacity) is
estimated and simulated (:data:`REQUESTS` requests by load, fixed lengths, one seed, the
first :data:`WARMUP` of each run left out), and the
report gives each latency's error, estimate over simulation.

The mean TPOT is also given without the prompt backlog a request's answer starts behind
(``steady._answer_s``): the time-averaged iteration alone, what the model answered until
session 73, the estimate's mean iteration (the one its rate is solved on) as TPOT.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from _cli import ScriptParser, parse_argv, script_parser

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.serving.dynamics import simulate_serving
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "serving-simulation.md"
#: (model, chip, tensor-parallel size): a dense model on a server, a small one on one
#: GPU, a mixture of experts on one OAM.
INSTANCES = (("llama3-70b", "h200-sxm-141gb", 8), ("llama3-8b", "h100-sxm-80gb", 1),
             ("mixtral-8x7b", "mi300x", 1))
#: (prompt, answer) tokens, from answer-heavy to prompt-heavy.
LENGTHS = ((500, 1000), (1000, 300), (4000, 200), (2000, 50), (8000, 100), (16000, 64))
#: Arrival rates as shares of the layout's offline capacity.
SHARES = (0.3, 0.6, 0.85)
#: Requests simulated per load, by share of capacity: the nearer the capacity, the
#: longer the batch takes to settle and the rarer the long queues that make the tails
#: (against 400,000 requests at 85 %, the means of 100,000 are within 2 % but on one
#: load, and the p99s within 8 %).
REQUESTS = {0.3: 20_000, 0.6: 50_000, 0.85: 100_000}
#: Share of each run's first requests left out of its statistics: they arrived while the
#: batch was still filling from empty. 3,000 requests with none left out (session 73)
#: had Llama 3 70B at 500 / 1,000 tokens and 85 % of capacity at a mean TPOT of 30 ms;
#: its steady state is 59 ms (62 ms over 800,000 requests).
WARMUP = 0.2
SEED = 1


@dataclass(frozen=True)
class Load:
    """One load: its estimate's and its simulation's latencies, s."""

    model: str
    chip: str
    input_len: int
    output_len: int
    share: float
    tpot_mean: float
    tpot_mean_iteration: float
    """The time-averaged iteration alone (no backlog), as TPOT: the estimate's mean
    iteration (:func:`_iteration_tpot`)."""
    tpot_p99: float
    ttft_mean: float
    ttft_p99: float
    sim_tpot_mean: float
    sim_tpot_p99: float
    sim_ttft_mean: float
    sim_ttft_p99: float


def measure() -> list[Load]:
    """Every load of the grid, estimated and simulated."""
    catalog = load_catalog()
    out = []
    for model, chip, tp in INSTANCES:
        shape = ModelShape.from_arch(catalog.model(model))
        system, plan = system_for_chip(catalog, chip, tp), ServingPlan(tp=tp)
        for isl, osl in LENGTHS:
            capacity = estimate_serving(ServingWorkload(shape, isl, osl), plan,
                                        system).requests_per_s
            for share in SHARES:
                wl = ServingWorkload(shape, isl, osl, load="poisson",
                                     rate_per_s=share * capacity, slo_stat="p99")
                est = estimate_serving(wl, plan, system)
                sim = simulate_serving(wl, plan, system, requests=REQUESTS[share],
                                       seed=SEED)
                assert sim is not None
                assert est.tpot_s is not None
                assert est.ttft_s is not None
                assert est.tpot_stat_s is not None
                assert est.ttft_stat_s is not None
                tpot, ttft = _steady(sim.result.tpot_s), _steady(sim.result.ttft_s)
                out.append(Load(
                    model, chip, isl, osl, share, est.tpot_s,
                    _iteration_tpot(est, wl, plan),
                    est.tpot_stat_s, est.ttft_s, est.ttft_stat_s,
                    float(np.mean(tpot)), float(np.percentile(tpot, 99)),
                    float(np.mean(ttft)), float(np.percentile(ttft, 99))))
    return out


def _steady(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A run's per-request latencies past its warm-up (:data:`WARMUP`), in request
    order."""
    return values[int(WARMUP * values.size):]


def _iteration_tpot(est: ServingEstimate, wl: ServingWorkload, plan: ServingPlan) -> float:
    """Mean TPOT of the time-averaged iteration, s: the estimate's mean iteration (at
    the grid batch its rate reaches) per token. The estimate's batch no longer gives it:
    that is the rate times a request's answer, backlog included (Little's law)."""
    assert est.iteration is not None
    return est.iteration.total_s * plan.pp / wl.tokens_per_step


def _err(model: float, sim: float) -> float:
    return 100.0 * (model / sim - 1.0)


#: The report's columns: (heading, estimate, simulation).
MEASURES = (("TPOT mean", "tpot_mean", "sim_tpot_mean"),
            ("TPOT mean, iteration alone", "tpot_mean_iteration", "sim_tpot_mean"),
            ("TPOT p99", "tpot_p99", "sim_tpot_p99"),
            ("TTFT mean", "ttft_mean", "sim_ttft_mean"),
            ("TTFT p99", "ttft_p99", "sim_ttft_p99"))


def errors(loads: list[Load], model: str, sim: str) -> list[float]:
    """Each load's error of one measure, %."""
    return [_err(getattr(x, model), getattr(x, sim)) for x in loads]


def render(loads: list[Load]) -> str:
    lines = ["# The serving steady state against the simulation", "",
             f"Written by `scripts/serving_vs_simulation.py`: {len(loads)} Poisson loads, "
             "each estimated (`ocplan.serving.steady`) and simulated request by request "
             f"(`ocplan.serving.simulate`, fixed lengths, seed {SEED}; "
             + ", ".join(f"{n:,} requests at {share:.0%}" for share, n in REQUESTS.items())
             + f" of capacity, the first {WARMUP:.0%} of each run left out as its warm-up) "
             "with the same step model; error = estimate / simulation - 1. "
             "'Iteration alone' is the mean TPOT without the prompt backlog a request's "
             "answer starts behind (`steady._answer_s`): the estimate's mean iteration, "
             "the one its rate is solved on, per token.", "",
             "| measure | loads | median abs % | p90 abs % | median signed % |",
             "|---|---|---|---|---|"]
    for name, model, sim in MEASURES:
        e = np.array(errors(loads, model, sim))
        lines.append(f"| {name} | {e.size} | {np.median(np.abs(e)):.1f} | "
                     f"{np.percentile(np.abs(e), 90):.1f} | {np.median(e):+.1f} |")
    lines += ["", "| model | chip | prompt | answer | load | TPOT mean ms, sim | model | "
              "iteration alone | TPOT p99 sim | model | TTFT mean sim | model | "
              "TTFT p99 sim | model |", "|" + "---|" * 14]
    for x in loads:
        lines.append(
            f"| {x.model} | {x.chip} | {x.input_len:,} | {x.output_len:,} | "
            f"{x.share:.0%} | {1e3 * x.sim_tpot_mean:.1f} | {1e3 * x.tpot_mean:.1f} | "
            f"{1e3 * x.tpot_mean_iteration:.1f} | {1e3 * x.sim_tpot_p99:.1f} | "
            f"{1e3 * x.tpot_p99:.1f} | {1e3 * x.sim_ttft_mean:.0f} | {1e3 * x.ttft_mean:.0f} | "
            f"{1e3 * x.sim_ttft_p99:.0f} | {1e3 * x.ttft_p99:.0f} |")
    return "\n".join(lines) + "\n"


def parser() -> ScriptParser:
    return script_parser(__file__, __doc__, f"Writes {REPORT.relative_to(ROOT)}.")


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    REPORT.write_text(render(measure()), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
