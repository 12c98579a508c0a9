"""``estimate(workload, plan, system) -> Estimate``: one layout, fully explained.

The estimate is the one-candidate case of :func:`ocplan.plan.engine.evaluate`. A
layout that cannot run (indivisible shapes, a chip without a floating-point matrix unit,
chips in several scale-up domains with nothing joining them, out of memory) is a result
with ``feasible=False`` and a reason, never an exception.

Every number an estimate returns is finite: each time and memory term of a layout that
passes :meth:`~ocplan.plan.plan.Plan.check` and
:func:`~ocplan.plan.engine.check_system` is asserted finite and non-negative (and the
step time, throughput, MFU and HFU positive); a violation is a bug in the engine, raised
as an ``AssertionError`` naming the term, chip, model and plan.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ocplan.catalog.system import System
from ocplan.errors import Infeasible
from ocplan.plan.calibration import Calibration, likely_rate, load_calibration
from ocplan.plan.caveats import caveats_for
from ocplan.plan.engine import check_system, evaluate_one, system_model
from ocplan.plan.plan import Plan
from ocplan.topology.power import power_budget
from ocplan.workloads.workload import Workload

__all__ = ["MEMORY_PART_LABELS", "TIME_TERM_LABELS", "Estimate", "MemoryBreakdown",
           "TimeBreakdown", "estimate", "infeasible_estimate"]


@dataclass(frozen=True)
class TimeBreakdown:
    """Seconds per optimizer step on the slowest pipeline stage.

    ``compute_s`` is forward + backward of every micro-batch; the other terms are what
    adds to it: recompute, exposed (not overlapped) communication by kind, the pipeline
    bubble and the optimizer step (its HBM passes, and on an eagerly run stack the fixed
    host cost of a step, the calibration's ``step_overhead_s``). They sum to the step
    time.
    """

    compute_s: float
    recompute_s: float
    tp_comm_s: float
    cp_comm_s: float
    ep_comm_s: float
    pp_comm_s: float
    dp_comm_s: float
    bubble_s: float
    optimizer_s: float

    def terms(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def label(term: str) -> str:
        """How a person reads the term ``term`` (a field name), as every surface prints it."""
        return TIME_TERM_LABELS[term]

    @property
    def total_s(self) -> float:
        return float(sum(self.terms().values()))

    def dominant(self) -> str:
        """The largest term other than compute, or ``"compute"`` when compute is over
        half the step."""
        terms = self.terms()
        if terms["compute_s"] >= 0.5 * self.total_s:
            return "compute"
        terms.pop("compute_s")
        return max(terms, key=lambda k: terms[k]).removesuffix("_s")


#: What each term of :class:`TimeBreakdown` is called where people read it (the CLI
#: table, the workbench, the report, the figures' legends). Communication terms are the
#: exposed part, the rest being hidden under compute.
TIME_TERM_LABELS: dict[str, str] = {
    "compute_s": "compute", "recompute_s": "recompute",
    "tp_comm_s": "TP communication", "cp_comm_s": "CP communication",
    "ep_comm_s": "EP communication", "pp_comm_s": "PP communication",
    "dp_comm_s": "DP communication", "bubble_s": "pipeline bubble",
    "optimizer_s": "optimizer step"}
assert list(TIME_TERM_LABELS) == [f.name for f in fields(TimeBreakdown)], "a term unlabelled"


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per chip at the peak of a step (first pipeline stage)."""

    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    logits_bytes: float
    reserved_bytes: float
    capacity_bytes: float

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.grads_bytes + self.optimizer_bytes
                + self.activations_bytes + self.logits_bytes + self.reserved_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes

    @staticmethod
    def label(part: str) -> str:
        """How a person reads the part ``part`` (a field name), as every surface prints it."""
        return MEMORY_PART_LABELS[part]


#: What each part of :class:`MemoryBreakdown` is called where people read it, in the
#: order they are listed (the capacity is not a part).
MEMORY_PART_LABELS: dict[str, str] = {
    "weights_bytes": "weights", "grads_bytes": "gradients",
    "optimizer_bytes": "optimizer state", "activations_bytes": "activations",
    "logits_bytes": "logits", "reserved_bytes": "framework reserve"}
assert list(MEMORY_PART_LABELS) == [f.name for f in fields(MemoryBreakdown)][:-1], \
    "a memory part unlabelled"


#: Figures of :class:`Estimate` that a layout that cannot run does not have: its JSON
#: gives them as null (the dataclass keeps 0.0 so that sorting and arithmetic stay
#: total).
ABSENT_WHEN_INFEASIBLE = ("step_s", "tokens_per_s", "tokens_per_s_per_chip", "mfu", "hfu",
                          "power_W", "calibration_family", "calibration_runs",
                          "calibration_cv_error_pct", "held_out_range_pct",
                          "likely_tokens_per_s_per_chip")


@dataclass(frozen=True)
class Estimate:
    """Result of one estimate."""

    feasible: bool
    reason: str | None
    plan: Plan
    chips: int
    step_s: float
    tokens_per_s: float
    tokens_per_s_per_chip: float
    mfu: float
    hfu: float
    time: TimeBreakdown | None
    memory: MemoryBreakdown | None
    bound: str
    power_W: float
    """IT power of the chips' share of the system at TDP."""
    calibration_family: str = "default"
    """Calibration family used for the chip (``default``: no measured runs fitted it)."""
    calibration_runs: int = 0
    """Published runs that family's values were fitted on (0 for the default values)."""
    calibration_cv_error_pct: float | None = None
    """Median |error| of that family's runs when each was predicted by a fit without its
    publication (leave one source out), %; None for the default values."""
    caveats: tuple[str, ...] = ()
    """Known limits of the model that apply to this layout (:mod:`ocplan.plan.caveats`):
    kinds of run that published measurements show it predicts less well."""
    held_out_range_pct: tuple[float, float] | None = None
    """(low, high) signed error, ``100 (predicted - measured) / measured``, between which
    80 % of the published runs the family's estimates are judged by fell when each was
    predicted by a fit without it
    (:attr:`~ocplan.plan.calibration.FamilyCalibration.held_out_range_pct`); None where
    the calibration has none."""
    stage_layers: tuple[int, int, int] | None = None
    """Transformer layers on the first, the fullest and the last pipeline stage
    (:meth:`~ocplan.plan.plan.Plan.stage_split`: the first holds the embedding, the last
    the LM head, the loss and any multi-token prediction modules); None for one stage
    or a split that cannot be."""
    calibration_variant: tuple[str, float, int] | None = None
    """(name, factor, runs) of the chip's family variant where the calibration fitted one
    (:attr:`~ocplan.plan.calibration.Calibration.variants`: the factor on the family's
    grouped 8-bit GEMM efficiency and the runs it was fitted on); None otherwise."""
    pipeline_runs: tuple[int, int] | None = None
    """(runs of the pipeline schedule a step, micro-batches in each) where a local batch
    splits the step into several runs (:meth:`~ocplan.plan.plan.Plan.pipeline_runs`);
    None for one run."""

    @property
    def likely_tokens_per_s_per_chip(self) -> tuple[float, float] | None:
        """(low, high) tokens/s per chip a measurement of this layout would likely show:
        the estimate divided by ``1 + e/100`` at each end of :attr:`held_out_range_pct`
        (:func:`~ocplan.plan.calibration.likely_rate`). None for a layout that cannot
        run or a calibration without a range."""
        if not self.feasible or self.held_out_range_pct is None:
            return None
        return likely_rate(self.tokens_per_s_per_chip, self.held_out_range_pct)

    def time_to_train_s(self, tokens: float) -> float:
        """Wall time to train on ``tokens`` tokens at this throughput."""
        return tokens / self.tokens_per_s if self.tokens_per_s > 0 else float("inf")

    def energy_J(self, tokens: float, pue: float = 1.0) -> float:
        """Facility energy to train on ``tokens`` tokens (TDP power x time x PUE)."""
        return self.power_W * pue * self.time_to_train_s(tokens)

    def cost(self, tokens: float, price_per_chip_hour: float) -> float:
        """Cost to train on ``tokens`` tokens at a price per chip-hour."""
        return self.chips * price_per_chip_hour * self.time_to_train_s(tokens) / 3600.0

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data; a layout that cannot run has no step time,
        rate, utilisation, power or calibration (null, not 0)."""
        data = asdict(self)
        if not self.feasible:
            data.update(dict.fromkeys(ABSENT_WHEN_INFEASIBLE))
        data["plan"] = self.plan.as_dict()
        likely = self.likely_tokens_per_s_per_chip  # None for a layout that cannot run
        data["likely_tokens_per_s_per_chip"] = None if likely is None else list(likely)
        if self.time is not None:
            data["time"]["total_s"] = self.time.total_s
        if self.memory is not None:
            data["memory"]["total_bytes"] = self.memory.total_bytes
        return data


def infeasible_estimate(plan: Plan, reason: str, memory: MemoryBreakdown | None = None,
                        stage_layers: tuple[int, int, int] | None = None) -> Estimate:
    """The result of a layout that cannot run: zeros, the reason, and the memory
    breakdown (and pipeline split) when memory is what refused it."""
    return Estimate(False, reason, plan, plan.chips, 0.0, 0.0, 0.0, 0.0, 0.0, None, memory,
                    "infeasible", 0.0, stage_layers=stage_layers)


def estimate(workload: Workload, plan: Plan, system: System,
             calibration: Calibration | None = None) -> Estimate:
    """Estimate one training step of ``workload`` laid out by ``plan`` on ``system``.

    Returns an infeasible Estimate (with the reason) when the layout cannot run;
    raises SpecError only for bad input.
    """
    cal = calibration or load_calibration()
    try:
        sm = system_model(system)  # refuses a board too large to model as a graph
        plan.check(workload)
        check_system(workload, sm, plan.chips)
    except Infeasible as exc:
        return infeasible_estimate(plan, str(exc))
    m = workload.model
    stages = plan.stage_split(m.n_layers, m.mtp_depth) if plan.pp > 1 else None
    f = evaluate_one(workload, sm, cal, plan)
    _assert_finite(f, system, workload, plan)
    memory = MemoryBreakdown(f["weights_bytes"], f["grads_bytes"], f["optimizer_bytes"],
                             f["activations_bytes"], f["logits_bytes"], f["reserved_bytes"],
                             f["capacity_bytes"])
    if not memory.fits:
        return infeasible_estimate(
            plan, f"memory: needs {memory.total_bytes / 1e9:.1f} GB per chip, "
                  f"{system.accelerator.id} has {memory.capacity_bytes / 1e9:.1f} GB", memory,
            stages)
    time = TimeBreakdown(f["compute_s"], f["recompute_s"], f["tp_comm_s"], f["cp_comm_s"],
                         f["ep_comm_s"], f["pp_comm_s"], f["dp_comm_s"], f["bubble_s"],
                         f["optimizer_s"])
    budget = power_budget(system)
    power = budget.it_W * plan.chips / system.num_chips
    family = cal.for_family(system.accelerator.family)
    variant = cal.variants.get(system.accelerator.family_variant or "")
    runs = plan.pipeline_runs(workload)
    return Estimate(True, None, plan, plan.chips, f["step_s"],
                    f["tokens_per_s_per_chip"] * plan.chips, f["tokens_per_s_per_chip"],
                    f["mfu"], f["hfu"], time, memory, time.dominant(), power,
                    cal.used_family(system.accelerator.family), family.runs,
                    family.cv_error_pct, caveats_for(workload, plan, system, f["step_s"]),
                    family.held_out_range_pct, stages,
                    None if variant is None else (str(system.accelerator.family_variant),
                                                  variant.grouped_gemm_8bit, variant.runs),
                    (runs, plan.micro_batches_per_run(workload)) if runs > 1 else None)


#: Results that must be strictly positive for a layout that runs: a step takes time, and
#: some tokens are trained in it at some utilization.
_POSITIVE = ("step_s", "tokens_per_s_per_chip", "mfu", "hfu", "compute_s", "memory_bytes",
             "capacity_bytes")
#: Relative slack of the MFU bounds: rounding of the step time's sums, not physics.
_MFU_SLACK = 1e-9


def _assert_finite(f: dict[str, float], system: System, workload: Workload, plan: Plan) -> None:
    """Assert every term of an evaluated layout is finite and >= 0, the headline numbers
    > 0, MFU at most what a chip at its peak can show (:attr:`~ocplan.workloads.
    workload.Workload.mfu_ceiling`: model FLOPs over the FLOPs the step must execute,
    relative to the fastest matrix rate the step uses, see
    :func:`~ocplan.plan.engine.evaluate`) and HFU at least MFU: the layout passed every
    feasibility check, so a violation is a bug in the engine."""
    for key, value in f.items():
        # the ceiling is >= 1 (executed FLOPs never exceed PaLM's), so it is computed
        # only for the rare MFU above 1, off the common path
        ok = math.isfinite(value) and (value > 0 if key in _POSITIVE else value >= 0) \
            and (value <= 1.0 or value <= workload.mfu_ceiling * (1.0 + _MFU_SLACK)
                 if key == "mfu" else True) \
            and (value >= f["mfu"] * (1.0 - _MFU_SLACK) if key == "hfu" else True)
        assert ok, (f"engine bug: {key} = {value} for {workload.model.name} on "
                    f"{system.accelerator.id} ({system.num_chips} chips), {plan}")
