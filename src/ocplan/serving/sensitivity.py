"""What each hardware resource buys one serving deployment: its figures with it scaled.

The serving counterpart of :mod:`ocplan.plan.sensitivity`, with the same resources
(:data:`~ocplan.plan.sensitivity.LEVERS`: matrix peak, HBM bandwidth, exponential rate,
scale-up, scale-out and host bandwidth) scaled one at a time in the engine's model of
the system, the layout, load, calibration and memory held. A deployment has several
figures, so each effect gives every :data:`MEASURES` figure, and one of them, the
*headline*, is the one the load asks about:

* a load that fills the deployment (``offline``, ``static``, ``concurrency``): output
  tokens per second per chip, its capacity;
* a Poisson load: its throughput is the arrival rate whatever the hardware, so the
  question is latency: the highest rate meeting the SLOs when they are set, else TPOT.

Decode at small batch reads every weight per token and answers to HBM bandwidth; a
prefill-heavy or large-batch deployment to the matrix peak; a tensor-parallel instance
across servers to scale-out bandwidth. The headline's elasticity is
``ln(v_f / v_0) / ln f`` for a figure where more is better and ``ln(v_0 / v_f) / ln f``
for a latency, so that 1 means the figure follows the resource fully either way. Under a
Poisson load the response can exceed 1: a faster iteration also drains the batch (Little's
law), which shortens the next iteration again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ocplan.catalog.system import System
from ocplan.errors import SpecError
from ocplan.plan.calibration import Calibration, load_calibration
from ocplan.plan.engine import system_model
from ocplan.plan.search_defaults import SENSITIVITY_FACTOR
from ocplan.plan.sensitivity import ResourceEffect, factor_problem, scaled_models
from ocplan.serving.calibration import ServingCalibration, load_serving_calibration
from ocplan.serving.estimate import ServingEstimate, estimate_on_model
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload

__all__ = ["MEASURES", "Measure", "ServingLeverEffect", "ServingSensitivity",
           "serving_sensitivity"]


@dataclass(frozen=True)
class Measure:
    """One figure of a :class:`~ocplan.serving.estimate.ServingEstimate` a sensitivity
    reports: its attribute ``name``, how it is shown, its SI ``unit`` and whether a
    larger value is the better one."""

    name: str
    label: str
    unit: str
    higher_is_better: bool


#: The figures each effect gives, in the order tables list them.
MEASURES: tuple[Measure, ...] = (
    Measure("output_tokens_per_s_per_chip", "output tokens/s per chip", "tok/s", True),
    Measure("ttft_s", "TTFT", "s", False),
    Measure("tpot_s", "TPOT", "s", False),
    Measure("slo_rate_per_s", "highest rate meeting the SLOs", "req/s", True),
)
_BY_NAME = {m.name: m for m in MEASURES}


def _values(est: ServingEstimate) -> dict[str, float | None]:
    """The estimate's :data:`MEASURES` (None where it has none: an unbounded queue has no
    TTFT, a deployment without SLOs no SLO rate)."""
    if not est.feasible:
        return dict.fromkeys(_BY_NAME)
    return {m.name: getattr(est, m.name) for m in MEASURES}


def _headline(wl: ServingWorkload, base: ServingEstimate) -> Measure:
    """The figure the load asks about (module docstring)."""
    if wl.load != "poisson":
        return _BY_NAME["output_tokens_per_s_per_chip"]
    if base.slo_rate_per_s is not None and base.slo_rate_per_s > 0:
        return _BY_NAME["slo_rate_per_s"]
    return _BY_NAME["tpot_s"]


def _change(base: float | None, value: float | None) -> float | None:
    """``value / base - 1``; None when either is missing or the base is not positive."""
    if base is None or value is None or base <= 0:
        return None
    return value / base - 1.0


def _elasticity(measure: Measure, base: float | None, value: float | None,
                factor: float) -> float | None:
    """The headline's response to the resource (module docstring); None when a value is
    missing or not positive."""
    if base is None or value is None or min(base, value) <= 0:
        return None
    ratio = value / base if measure.higher_is_better else base / value
    return math.log(ratio) / math.log(factor)


@dataclass(frozen=True)
class ServingLeverEffect(ResourceEffect):
    """The deployment with one resource scaled: each :data:`MEASURES` figure (``values``)
    and its relative change (``changes``, None where a figure is missing), the headline's
    elasticity, and ``reason`` when the scaled deployment no longer keeps up with its
    load."""

    lever: str
    label: str
    values: dict[str, float | None]
    changes: dict[str, float | None]
    elasticity: float | None
    reason: str | None = None


@dataclass(frozen=True)
class ServingSensitivity:
    """The base figures and each lever's effect at ``factor``; ``together`` is the
    effect of every lever scaled at once. ``headline`` names the measure the load asks
    about. A deployment that cannot serve has a ``reason`` and no effects."""

    factor: float
    reason: str | None
    headline: str
    base: dict[str, float | None]
    effects: tuple[ServingLeverEffect, ...]
    together: ServingLeverEffect | None

    @property
    def feasible(self) -> bool:
        return self.reason is None

    @property
    def measure(self) -> Measure:
        return _BY_NAME[self.headline]

    @property
    def rows(self) -> tuple[ServingLeverEffect, ...]:
        """Each lever's effect, then every resource together (what tables list)."""
        return self.effects + (() if self.together is None else (self.together,))

    @property
    def leading(self) -> ServingLeverEffect | None:
        """The lever that moves the headline most (None when none moves it)."""
        moving = [e for e in self.effects
                  if e.present and e.changes[self.headline] not in (None, 0.0)]
        return max(moving, key=lambda e: abs(e.changes[self.headline] or 0.0), default=None)

    def _phrase(self, change: float, label: str) -> str:
        """``raises <label> 40%`` for a figure where more is better, ``makes <label> 40%
        shorter`` for a latency."""
        if self.measure.higher_is_better:
            return f"{'raises' if change > 0 else 'lowers'} {label} {abs(change):.0%}"
        return f"makes {label} {abs(change):.0%} {'shorter' if change < 0 else 'longer'}"

    def summary(self) -> str:
        """One sentence: the leading lever and what scaling everything buys."""
        if not self.feasible:
            return f"no sensitivity: the deployment cannot serve ({self.reason})"
        f = f"x{self.factor:g}"
        lead = self.leading
        if lead is None:
            return f"No resource {f} moves {self.measure.label} at this load."
        sentence = (f"{lead.label} {f} "
                    f"{self._phrase(lead.changes[self.headline] or 0.0, self.measure.label)}")
        whole = None if self.together is None else self.together.changes[self.headline]
        if whole is not None:
            sentence += f"; every resource {f} together {self._phrase(whole, 'it')}"
        return sentence + "."

    def as_dict(self) -> dict[str, Any]:
        lead = self.leading
        return {"factor": self.factor, "feasible": self.feasible, "reason": self.reason,
                "headline": self.headline, "headline_label": self.measure.label,
                "base": dict(self.base),
                "leading": lead.lever if lead is not None else None,
                "summary": self.summary(),
                "effects": [e.as_dict() for e in self.effects],
                "together": None if self.together is None else self.together.as_dict()}


def serving_sensitivity(workload: ServingWorkload, plan: ServingPlan, system: System,
                        factor: float = SENSITIVITY_FACTOR,
                        calibration: Calibration | None = None,
                        serving: ServingCalibration | None = None) -> ServingSensitivity:
    """Estimate serving ``workload`` with ``plan`` on ``system`` again with each
    :data:`~ocplan.plan.sensitivity.LEVERS` resource times ``factor`` (the factor rule of
    :func:`~ocplan.plan.sensitivity.factor_problem`; another is a
    :class:`~ocplan.errors.SpecError`). A deployment that cannot serve comes back with
    its reason and no effects; one that serves but cannot keep up with its load (an
    overloaded Poisson rate) is re-timed all the same, its figures saying so."""
    problem = factor_problem(factor)
    if problem is not None:
        raise SpecError.one("sensitivity", "factor", problem, factor)
    cal = calibration or load_calibration()
    scal = serving or load_serving_calibration()
    sm = system_model(system)
    base_est = estimate_on_model(workload, plan, system, sm, cal, scal)
    headline = _headline(workload, base_est)
    if not base_est.feasible:
        return ServingSensitivity(factor, base_est.reason, headline.name, _values(base_est),
                                  (), None)
    base = _values(base_est)

    def effect(name: str, label: str, est: ServingEstimate | None,
               absent: str | None = None) -> ServingLeverEffect:
        values = base if est is None else _values(est)
        return ServingLeverEffect(
            name, label, values, {k: _change(base[k], values[k]) for k in values},
            _elasticity(headline, base[headline.name], values[headline.name], factor),
            None if est is None else est.reason, absent=absent)

    scaled = scaled_models(sm, factor)
    effects = tuple(
        effect(lever.name, lever.label,
               None if model is None else estimate_on_model(workload, plan, system, model,
                                                            cal, scal),
               None if model is not None else lever.absent)
        for lever, model in scaled.levers)
    together = effect("together", f"every resource x{factor:g}",
                      estimate_on_model(workload, plan, system, scaled.together, cal, scal))
    return ServingSensitivity(factor, None, headline.name, base, effects, together)
