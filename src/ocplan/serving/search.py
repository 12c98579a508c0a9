"""The best serving layout for a chip count: every candidate estimated, the best kept.

Candidates (:func:`serving_candidates`): TP a power of two inside one scale-up domain,
PP a power of two, DP the rest; for MoE models every EP size dividing the ranks of an
instance stage, with and without DP attention. Sizes a caller fixes are held. The
objective is output tokens/s per chip, or, under SLOs, the highest request rate meeting
them (goodput); :meth:`ServingSearch.pareto` is the throughput-TPOT front. With
``disaggregate`` every layout of two or more tensor-parallel groups is also tried split
into prefill and decode pools at several ratios.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ocplan.catalog.system import System
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.plan.calibration import Calibration
from ocplan.plan.layout import given_problems
from ocplan.serving.calibration import ServingCalibration
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import SERVING_LAYOUT, SERVING_LAYOUT_FIELDS, ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

__all__ = ["FIXABLE", "SERVING_OBJECTIVES", "ServingSearch", "default_objective",
           "fixed_problems", "meets_slo",
           "search_serving", "serving_candidates", "slo_misses"]

Objective = Literal["throughput", "goodput"]
#: Disaggregated splits tried per aggregated layout.
MAX_SPLITS = 6
#: Fields a caller may fix that the search does not try: held as given in every
#: candidate. The scheduler and memory limits declared ``search="fixed"`` (a new one needs
#: only its declaration), two-batch overlap, and the prefill pool (``disaggregate`` tries
#: pools instead).
PASSED_THROUGH: tuple[str, ...] = tuple(
    f.name for f in SERVING_LAYOUT_FIELDS
    if f.search == "fixed" or f.name in ("overlap", "prefill_chips"))
#: Search axes a caller may pin to one value.
PINNED_AXES = ("tp", "pp", "ep", "attention_dp")
#: Every field a serving search takes as given (``fixed``); ``dp`` follows from the chips.
FIXABLE = PINNED_AXES + PASSED_THROUGH
SERVING_OBJECTIVES: tuple[str, ...] = ("throughput", "goodput")


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def serving_candidates(model: ModelShape, chips: int, domain: int,
                       fixed: Mapping[str, object] | None = None,
                       disaggregate: bool = False) -> list[ServingPlan]:
    """Layouts of ``chips`` chips (see the module docstring); ``fixed`` holds fields
    (:data:`FIXABLE`) the caller gives; ``disaggregate`` adds prefill/decode splits of
    each layout."""
    fixed = dict(fixed or {})
    out: list[ServingPlan] = []
    for tp in _choices(fixed, "tp", _powers_of_two(min(chips, domain))):
        for pp in _choices(fixed, "pp", _powers_of_two(chips // tp)):
            if chips % (tp * pp):
                continue
            dp = chips // (tp * pp)
            for adp in _flags(fixed, "attention_dp", [False, True] if model.is_moe else [False]):
                if adp and dp == 1:
                    continue
                group = tp * (dp if adp else 1)
                eps = [e for e in range(1, group + 1) if group % e == 0] if model.is_moe else [1]
                for ep in _choices(fixed, "ep", eps):
                    extra = {k: v for k, v in fixed.items() if k in PASSED_THROUGH}
                    plan = ServingPlan(tp=tp, pp=pp, dp=dp, ep=ep, attention_dp=adp,
                                       **extra)  # type: ignore[arg-type]
                    out.append(plan)
                    if disaggregate and "prefill_chips" not in fixed:
                        out += _splits(plan)
    return out


def _splits(plan: ServingPlan) -> list[ServingPlan]:
    """Disaggregated variants of an aggregated layout: every prefill pool of whole
    tensor-parallel groups (at most :data:`MAX_SPLITS`, spread over the range)."""
    stage = plan.tp * plan.pp
    groups = plan.chips // stage
    if groups < 2:
        return []
    ks = sorted({round(1 + i * (groups - 2) / max(MAX_SPLITS - 1, 1))
                 for i in range(min(MAX_SPLITS, groups - 1))})
    return [replace(plan, prefill_chips=k * stage) for k in ks]


def _choices(fixed: Mapping[str, object], name: str, default: list[int]) -> list[int]:
    value = fixed.get(name)
    if value is None:
        return default
    assert isinstance(value, int), (name, value)
    return [int(value)]


def _flags(fixed: Mapping[str, object], name: str, default: list[bool]) -> list[bool]:
    value = fixed.get(name)
    if value is None:
        return default
    assert isinstance(value, bool), (name, value)
    return [value]


#: What a goodput ranking's latency columns are: each estimate's TTFT and TPOT are those
#: of the most load the layout sustains, while the SLO goodput (the highest rate within
#: the limits) ranks them, so a TPOT above the limit there is not a breach.
GOODPUT_NOTE = ("throughput, TTFT and TPOT at the most load each layout sustains; SLO "
                "goodput: the highest request rate whose latencies keep within the limits, "
                "which ranks the layouts.")


def default_objective(slo_ttft_s: float | None, slo_tpot_s: float | None) -> str:
    """What a serving search ranks by unless told: ``goodput`` (the request rate that
    meets the SLOs) when a latency limit is set, else ``throughput``."""
    return "goodput" if slo_ttft_s or slo_tpot_s else "throughput"


def objective_note(objective: str) -> str | None:
    """The sentence a table ranked by ``objective`` needs beside it (None: none)."""
    return GOODPUT_NOTE if objective == "goodput" else None


@dataclass(frozen=True)
class ServingSearch:
    """Every candidate's estimate, best first, and the objective used."""

    objective: str
    results: tuple[ServingEstimate, ...]

    @property
    def best(self) -> ServingEstimate:
        return self.results[0]

    def pareto(self) -> tuple[ServingEstimate, ...]:
        """The feasible layouts no other beats on both output tokens/s per chip and TPOT
        (the throughput-latency front), by rising TPOT; none for one-token answers
        (no TPOT)."""
        front: list[ServingEstimate] = []
        best = -1.0
        for e in sorted((e for e in self.results if e.feasible and e.tpot_s is not None),
                        key=lambda e: (_tpot(e), -e.output_tokens_per_s_per_chip)):
            if e.output_tokens_per_s_per_chip > best:
                front.append(e)
                best = e.output_tokens_per_s_per_chip
        return tuple(front)


def _tpot(e: ServingEstimate) -> float:
    """TPOT of a feasible estimate of answers longer than one token."""
    assert e.tpot_s is not None, e.plan
    return e.tpot_s


def slo_misses(e: ServingEstimate, workload: ServingWorkload
               ) -> list[tuple[float, str, float | None, float]]:
    """(latency / limit, name, latency, limit) of each latency limit ``workload`` sets,
    largest ratio first, for a feasible estimate: at the SLO's statistic where the
    estimate has it, else the means, as the SLO is judged (an unbounded queue, no TTFT,
    misses by inf)."""
    pairs = (("TTFT", e.ttft_stat_s if e.ttft_stat_s is not None else e.ttft_s,
              workload.slo_ttft_s),
             ("TPOT", e.tpot_stat_s if e.tpot_stat_s is not None else e.tpot_s,
              workload.slo_tpot_s))
    misses = [(math.inf if got is None else got / limit, name, got, limit)
              for name, got, limit in pairs if limit is not None]
    return sorted(misses, key=lambda m: -m[0])


def _worst_miss(e: ServingEstimate, workload: ServingWorkload) -> float:
    """How far a feasible estimate's latencies are from the limits: the largest ratio
    (1 or less: within them; 0 without limits)."""
    misses = slo_misses(e, workload) if e.feasible else []
    return misses[0][0] if misses else 0.0


def meets_slo(e: ServingEstimate, workload: ServingWorkload) -> bool:
    """Whether a feasible estimate serves within the workload's limits: a positive SLO
    goodput where it has one, else (a disaggregated deployment, judged at the load it is
    given) its latencies within them."""
    if e.slo_rate_per_s is not None:
        return e.slo_rate_per_s > 0
    return _worst_miss(e, workload) <= 1.0


def _score(e: ServingEstimate, objective: str, workload: ServingWorkload) -> float:
    """What ranks ``e``, higher first: output tokens/s per chip, or for ``goodput`` the
    SLO goodput per chip (requests/s): the highest rate within the limits where the
    estimate has it, else the rate it serves if it meets them (:func:`meets_slo`), 0 if
    not."""
    if not e.feasible:
        return -1.0
    if objective != "goodput":
        return e.output_tokens_per_s_per_chip
    if e.slo_rate_per_s is not None:
        return e.slo_rate_per_s / e.chips
    return e.requests_per_s / e.chips if meets_slo(e, workload) else 0.0


def fixed_problems(fixed: Mapping[str, object], source: str = "search") -> list[Problem]:
    """What is wrong with the fields a caller fixes (:data:`FIXABLE`, each value as its
    declaration allows: :data:`~ocplan.serving.plan.SERVING_LAYOUT`)."""
    fields = tuple(SERVING_LAYOUT[name] for name in FIXABLE)
    return [Problem(source, name, message, fixed[name]) for name, message
            in given_problems(fixed, fields, "a serving search takes as given")]


def search_serving(workload: ServingWorkload, system: System, chips: int,
                   fixed: Mapping[str, object] | None = None, objective: str = "throughput",
                   calibration: Calibration | None = None,
                   serving: ServingCalibration | None = None,
                   disaggregate: bool = False) -> ServingSearch:
    """Estimate every candidate layout; best first by ``objective``. ``fixed`` pins
    fields (:data:`FIXABLE`) in every candidate; SpecError naming each bad one."""
    problems = fixed_problems(fixed or {})
    if objective not in SERVING_OBJECTIVES:
        problems.append(Problem("search", "objective",
                                f"expected one of {', '.join(SERVING_OBJECTIVES)}", objective))
    if problems:
        raise SpecError(problems)
    candidates = serving_candidates(workload.model, chips, system.chips_per_server, fixed,
                                    disaggregate)
    if fixed and not candidates:  # the pins themselves leave nothing to search: bad input
        pins = ", ".join(f"{k}={v}" for k, v in fixed.items())
        raise SpecError.one("search", "fixed", f"no layout of {chips:,} chips takes {pins} "
                                              f"(tp x pp must divide the chips, tp at most "
                                              f"the {system.chips_per_server}-chip server)",
                            pins)
    results = []
    refused: dict[str, None] = {}  # why the model refuses layouts, each reason once
    for plan in candidates:
        try:
            plan.check(workload.model)
        except Infeasible as exc:
            refused[str(exc)] = None
            continue
        results.append(estimate_serving(workload, plan, system, calibration, serving))
    if fixed and not results:  # the pins leave no layout the model takes: bad input
        pins = ", ".join(f"{k}={v}" for k, v in fixed.items())
        first = next(iter(fixed))
        raise SpecError.one("search", first,
                            f"no layout of {chips:,} chips with {pins} suits "
                            f"{workload.model.name}: {'; '.join(refused)}", fixed[first])
    # layouts of equal goodput (none meets the limits: all 0) by how far they miss them
    results.sort(key=lambda e: (-_score(e, objective, workload),
                                _worst_miss(e, workload) if objective == "goodput" else 0.0))
    return ServingSearch(objective, tuple(results))
