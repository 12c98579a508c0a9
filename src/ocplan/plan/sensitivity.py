"""What each hardware resource buys one training layout: the step with it scaled.

A system designer asks which resource limits a job: would twice the HBM bandwidth help
more than twice the scale-out bandwidth? :func:`sensitivity` answers at a fixed layout
by timing the step again with one resource of the chip or its fabric multiplied by a
factor, everything else (the layout, the calibration, the latencies) held. Each resource
is a :class:`Lever` of :data:`LEVERS`, declared once: what it scales in the system model
the step reads (:class:`~ocplan.plan.engine.SystemModel`) and how it is named.

The effect of a lever is reported as the step's relative change and as its logarithmic
elasticity ``e = ln(t_0 / t_f) / ln(f)`` (the step's relative response per relative
change of the resource, taken over the finite step ``f`` rather than at a point): 1 for
a step bound entirely by that resource, 0 for one it does not touch. Scaling every lever at
once shows what stays fixed: per-kernel costs and per-message latencies, which no
bandwidth or peak shortens (the step falls by less than ``f``).

Memory capacity is not a lever: at a fixed layout it changes whether the layout fits,
not how long its step takes (``ocplan search`` answers what more capacity allows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ocplan.catalog.system import System
from ocplan.collectives.fabric import CommFabric
from ocplan.errors import Infeasible, SpecError
from ocplan.plan.calibration import Calibration, load_calibration
from ocplan.plan.engine import SystemModel, check_system, evaluate_one, system_model
from ocplan.plan.plan import Plan
from ocplan.plan.search_defaults import (
    MAX_SENSITIVITY_FACTOR,
    MIN_SENSITIVITY_FACTOR,
    SENSITIVITY_FACTOR,
)
from ocplan.workloads.workload import Workload

__all__ = ["LEVERS", "Lever", "LeverEffect", "ResourceEffect", "ScaledModels", "Sensitivity",
           "elasticity", "factor_problem", "scaled_models", "sensitivity"]


def factor_problem(factor: float) -> str | None:
    """What is wrong with a sensitivity factor (None when nothing is): it must lie in
    :data:`~ocplan.plan.search_defaults.MIN_SENSITIVITY_FACTOR` to
    :data:`~ocplan.plan.search_defaults.MAX_SENSITIVITY_FACTOR` and not be 1. The one
    rule of the library call and of the API request's field."""
    if not isinstance(factor, int | float) or isinstance(factor, bool):
        return "must be a number, e.g. 2 (twice as fast) or 0.5 (half)"
    if factor == 1.0:
        return "a factor of 1 scales nothing; use e.g. 2 (twice as fast) or 0.5 (half)"
    if not MIN_SENSITIVITY_FACTOR <= factor <= MAX_SENSITIVITY_FACTOR:
        return (f"must be at least {MIN_SENSITIVITY_FACTOR:g} and at most "
                f"{MAX_SENSITIVITY_FACTOR:g}")
    return None


def _scale_fabric(fab: CommFabric, up: float = 1.0, out: float = 1.0) -> CommFabric:
    """``fab`` with its scale-up bandwidths times ``up`` and its scale-out bandwidth
    times ``out``; latencies unchanged."""
    return replace(fab, up_group_Bps={k: v * up for k, v in fab.up_group_Bps.items()},
                   up_chip_Bps=fab.up_chip_Bps * up, nvls_Bps=fab.nvls_Bps * up,
                   out_Bps=fab.out_Bps * out)


def _matrix_peak(sm: SystemModel, f: float) -> SystemModel:
    return replace(sm, peak={p: v * f for p, v in sm.peak.items()})


def _exp_rate(sm: SystemModel, f: float) -> SystemModel:
    return replace(sm, compute=replace(sm.compute, exp_per_s=sm.compute.exp_per_s * f))


def _hbm(sm: SystemModel, f: float) -> SystemModel:
    return replace(sm, hbm_Bps=sm.hbm_Bps * f)


def _scale_up(sm: SystemModel, f: float) -> SystemModel:
    return replace(sm, fabric=_scale_fabric(sm.fabric, up=f))


def _scale_out(sm: SystemModel, f: float) -> SystemModel:
    return replace(sm, fabric=_scale_fabric(sm.fabric, out=f))


def _host(sm: SystemModel, f: float) -> SystemModel:
    return replace(sm, host_Bps=sm.host_Bps * f)


@dataclass(frozen=True)
class Lever:
    """One hardware resource the step can be re-timed with.

    ``scale(sm, f)`` returns the system model with the resource times ``f``;
    ``present(sm)`` says whether the system has the resource at all (a chip whose
    exponential rate is not published, a single server without scale-out): scaling what
    is absent changes nothing, and the effect says so (``absent``) rather than reporting
    a zero.
    """

    name: str
    label: str
    scale: Callable[[SystemModel, float], SystemModel]
    present: Callable[[SystemModel], bool]
    absent: str = "none on this system"


#: The resources, in the order reports list them.
LEVERS: tuple[Lever, ...] = (
    Lever("matrix_peak", "matrix-unit peak (every precision)", _matrix_peak,
          lambda sm: bool(sm.peak)),
    Lever("hbm_bandwidth", "HBM bandwidth", _hbm, lambda sm: sm.hbm_Bps > 0),
    Lever("exp_rate", "softmax exponential rate (special-function units)", _exp_rate,
          lambda sm: sm.compute.exp_per_s > 0, "not published for this chip"),
    Lever("scale_up_bandwidth", "scale-up bandwidth per chip", _scale_up,
          lambda sm: sm.domain > 1 and sm.fabric.up_chip_Bps > 0),
    Lever("scale_out_bandwidth", "scale-out bandwidth per chip", _scale_out,
          lambda sm: sm.fabric.out_Bps > 0),
    Lever("host_bandwidth", "host link bandwidth (PCIe / C2C)", _host,
          lambda sm: sm.host_Bps > 0),
)


@dataclass(frozen=True)
class ScaledModels:
    """The system model with each lever scaled (None where the system lacks the
    resource, with the lever's absence reason) and with every present lever scaled at
    once: what any workload's sensitivity re-times."""

    levers: tuple[tuple[Lever, SystemModel | None], ...]
    together: SystemModel


def scaled_models(sm: SystemModel, factor: float) -> ScaledModels:
    """``sm`` with each :data:`LEVERS` resource times ``factor``, one at a time and all
    together (the resources the system lacks left as they are)."""
    assert factor > 0, factor
    levers = []
    together = sm
    for lever in LEVERS:
        present = lever.present(sm)
        levers.append((lever, lever.scale(sm, factor) if present else None))
        together = lever.scale(together, factor) if present else together
    return ScaledModels(tuple(levers), together)


def elasticity(base_s: float, scaled_s: float, factor: float) -> float:
    """``ln(t_0 / t_f) / ln(f)``: the step's response to the resource, 1 when the step
    scales with it fully, 0 when it does not move (module docstring)."""
    assert min(base_s, scaled_s) > 0, (base_s, scaled_s)
    assert factor > 0, factor
    assert factor != 1.0
    return math.log(base_s / scaled_s) / math.log(factor)


@dataclass(frozen=True)
class ResourceEffect:
    """What scaling one resource did, training or serving: ``absent`` says why the
    system lacks the resource (its catalog entry does not publish it, or it has none;
    the figures are then the base's)."""

    absent: str | None = field(default=None, kw_only=True)

    @property
    def present(self) -> bool:
        return self.absent is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"present": self.present}


@dataclass(frozen=True)
class LeverEffect(ResourceEffect):
    """The step with one resource scaled.

    ``step_s`` is the step with the resource times the factor; ``change`` its relative
    change, ``step_s / base - 1`` (negative: shorter); ``elasticity`` as
    :func:`elasticity`.
    """

    lever: str
    label: str
    step_s: float
    change: float
    elasticity: float


@dataclass(frozen=True)
class Sensitivity:
    """The base step and each lever's effect at ``factor``; ``together_s`` is the step
    with every lever scaled at once. A layout that cannot run has a ``reason`` and no
    effects."""

    factor: float
    reason: str | None
    base_step_s: float
    effects: tuple[LeverEffect, ...]
    together_s: float

    @property
    def feasible(self) -> bool:
        return self.reason is None

    @property
    def together_change(self) -> float:
        """Relative change of the step with every lever scaled, ``t_all / t_0 - 1``."""
        return self.together_s / self.base_step_s - 1.0 if self.feasible else 0.0

    @property
    def leading(self) -> LeverEffect | None:
        """The lever that moves the step most (None when none moves it)."""
        moving = [e for e in self.effects if e.present and e.change != 0.0]
        return max(moving, key=lambda e: abs(e.change), default=None)

    @property
    def fixed_share(self) -> float:
        """Share of the step no lever shortens: ``(t_all - t_0 / f) / (t_0 - t_0 / f)``
        for ``f > 1``, the part of the step that behaved as fixed latency when every
        resource was scaled together (0: it all scales; 1: nothing does)."""
        if not self.feasible:
            return 0.0
        ideal = self.base_step_s / self.factor
        return (self.together_s - ideal) / (self.base_step_s - ideal)

    def summary(self) -> str:
        """One sentence: the leading lever and what scaling everything buys."""
        if not self.feasible:
            return f"no sensitivity: the layout cannot run ({self.reason})"
        lead = self.leading
        f = f"x{self.factor:g}"
        if lead is None:
            return f"No resource {f} moves this step."
        word = "shorter" if lead.change < 0 else "longer"
        together = self.together_change
        together_word = "shorter" if together < 0 else "longer"
        return (f"{lead.label} {f} makes the step {abs(lead.change):.0%} {word}; every "
                f"resource {f} together {abs(together):.0%} {together_word}, "
                f"{self.fixed_share:.0%} of the step behaving as fixed latency "
                "(per-kernel and per-message costs).")

    def as_dict(self) -> dict[str, Any]:
        lead = self.leading
        return {"factor": self.factor, "feasible": self.feasible, "reason": self.reason,
                "base_step_s": self.base_step_s if self.feasible else None,
                "together_s": self.together_s if self.feasible else None,
                "fixed_share": self.fixed_share if self.feasible else None,
                "leading": lead.lever if lead is not None else None,
                "summary": self.summary(),
                "effects": [e.as_dict() for e in self.effects]}


def sensitivity(workload: Workload, plan: Plan, system: System,
                factor: float = SENSITIVITY_FACTOR,
                calibration: Calibration | None = None) -> Sensitivity:
    """Time ``plan`` of ``workload`` on ``system`` again with each :data:`LEVERS`
    resource times ``factor`` (from :data:`~ocplan.plan.search_defaults.
    MIN_SENSITIVITY_FACTOR` to :data:`~ocplan.plan.search_defaults.MAX_SENSITIVITY_FACTOR`,
    not 1; another is a :class:`~ocplan.errors.SpecError`).

    The layout is held, so memory and feasibility do not change; a layout that cannot
    run (any reason :func:`~ocplan.plan.estimate.estimate` gives but memory, which the
    caller's estimate reports) comes back with ``feasible=False`` and the reason.
    """
    problem = factor_problem(factor)
    if problem is not None:
        raise SpecError.one("sensitivity", "factor", problem, factor)
    cal = calibration or load_calibration()
    try:
        sm = system_model(system)
        plan.check(workload)
        check_system(workload, sm, plan.chips)
    except Infeasible as exc:
        return Sensitivity(factor, str(exc), 0.0, (), 0.0)
    base = evaluate_one(workload, sm, cal, plan)["step_s"]
    scaled = scaled_models(sm, factor)
    effects = []
    for lever, model in scaled.levers:
        step = base if model is None else evaluate_one(workload, model, cal, plan)["step_s"]
        effects.append(LeverEffect(lever.name, lever.label, step, step / base - 1.0,
                                   elasticity(base, step, factor),
                                   absent=None if model is not None else lever.absent))
    together_s = evaluate_one(workload, scaled.together, cal, plan)["step_s"]
    return Sensitivity(factor, None, base, tuple(effects), together_s)
