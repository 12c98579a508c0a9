"""``estimate(workload, plan, system)`` and ``sensitivity(...)`` for every kind of workload.

One entry point each, dispatched on the workload's type through a registry (adding a
kind of workload is one entry): a training :class:`~ocplan.workloads.workload.Workload`
with a :class:`~ocplan.plan.plan.Plan` gives an :class:`~ocplan.plan.estimate.Estimate`
and a :class:`~ocplan.plan.sensitivity.Sensitivity`; a
:class:`~ocplan.workloads.serving.ServingWorkload` with a
:class:`~ocplan.serving.plan.ServingPlan` gives a
:class:`~ocplan.serving.estimate.ServingEstimate` and a
:class:`~ocplan.serving.sensitivity.ServingSensitivity`. Each result is a frozen
breakdown naming the bound that dominated (or, for a sensitivity, the resource that
leads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from ocplan.catalog.system import System
from ocplan.errors import SpecError
from ocplan.plan.estimate import Estimate
from ocplan.plan.estimate import estimate as estimate_training
from ocplan.plan.plan import Plan
from ocplan.plan.search_defaults import SENSITIVITY_FACTOR
from ocplan.plan.sensitivity import Sensitivity
from ocplan.plan.sensitivity import sensitivity as training_sensitivity
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.sensitivity import ServingSensitivity, serving_sensitivity
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.workload import Workload

__all__ = ["ESTIMATORS", "Estimator", "estimate", "sensitivity"]


@dataclass(frozen=True)
class Estimator:
    """What one kind of workload is estimated with: the plan type it takes, its
    estimate ``(workload, plan, system)`` and its sensitivity ``(workload, plan, system,
    factor)``."""

    plan_type: type
    estimate: Callable[..., Any]
    sensitivity: Callable[..., Any]


#: The estimator of each kind of workload.
ESTIMATORS: dict[type, Estimator] = {
    Workload: Estimator(Plan, estimate_training, training_sensitivity),
    ServingWorkload: Estimator(ServingPlan, estimate_serving, serving_sensitivity),
}


def _estimator(workload: object, plan: object) -> Estimator:
    """The registry entry of ``workload``'s kind; SpecError when there is none or the plan
    is not of that kind."""
    entry = ESTIMATORS.get(type(workload))
    if entry is None:
        raise SpecError.one("argument", "workload", "expected one of "
                            + ", ".join(t.__name__ for t in ESTIMATORS),
                            type(workload).__name__)
    if not isinstance(plan, entry.plan_type):
        raise SpecError.one("argument", "plan", f"a {type(workload).__name__} takes a "
                                                f"{entry.plan_type.__name__}",
                            type(plan).__name__)
    return entry


@overload
def estimate(workload: Workload, plan: Plan, system: System) -> Estimate: ...


@overload
def estimate(workload: ServingWorkload, plan: ServingPlan, system: System
             ) -> ServingEstimate: ...


def estimate(workload: Workload | ServingWorkload, plan: Plan | ServingPlan,
             system: System) -> Estimate | ServingEstimate:
    """Estimate ``workload`` laid out by ``plan`` on ``system`` (see the module
    docstring); SpecError when the plan is not of the workload's kind."""
    result: Estimate | ServingEstimate = _estimator(workload, plan).estimate(
        workload, plan, system)
    return result


@overload
def sensitivity(workload: Workload, plan: Plan, system: System,
                factor: float = SENSITIVITY_FACTOR) -> Sensitivity: ...


@overload
def sensitivity(workload: ServingWorkload, plan: ServingPlan, system: System,
                factor: float = SENSITIVITY_FACTOR) -> ServingSensitivity: ...


def sensitivity(workload: Workload | ServingWorkload, plan: Plan | ServingPlan,
                system: System, factor: float = SENSITIVITY_FACTOR
                ) -> Sensitivity | ServingSensitivity:
    """What each hardware resource times ``factor`` buys ``workload`` laid out by
    ``plan`` on ``system``: a training step (:func:`ocplan.plan.sensitivity.sensitivity`)
    or a serving deployment (:func:`ocplan.serving.sensitivity.serving_sensitivity`);
    SpecError when the plan is not of the workload's kind or the factor is out of
    bounds."""
    result: Sensitivity | ServingSensitivity = _estimator(workload, plan).sensitivity(
        workload, plan, system, factor)
    return result
