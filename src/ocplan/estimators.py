"""``estimate(workload, plan, system)`` for every kind of workload.

One entry point, dispatched on the workload's type through a registry (adding a kind of
workload is one entry): a training :class:`~ocplan.workloads.workload.Workload` with a
:class:`~ocplan.plan.plan.Plan` gives an :class:`~ocplan.plan.estimate.Estimate`; a
:class:`~ocplan.workloads.serving.ServingWorkload` with a
:class:`~ocplan.serving.plan.ServingPlan` gives a
:class:`~ocplan.serving.estimate.ServingEstimate`. Each result is a frozen breakdown
naming the bound that dominated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from ocplan.catalog.system import System
from ocplan.errors import SpecError
from ocplan.plan.estimate import Estimate
from ocplan.plan.estimate import estimate as estimate_training
from ocplan.plan.plan import Plan
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.workload import Workload

__all__ = ["ESTIMATORS", "estimate"]

#: The estimator of each kind of workload, and the plan type it takes.
ESTIMATORS: dict[type, tuple[type, Callable[..., Any]]] = {
    Workload: (Plan, estimate_training),
    ServingWorkload: (ServingPlan, estimate_serving),
}


@overload
def estimate(workload: Workload, plan: Plan, system: System) -> Estimate: ...


@overload
def estimate(workload: ServingWorkload, plan: ServingPlan, system: System
             ) -> ServingEstimate: ...


def estimate(workload: Workload | ServingWorkload, plan: Plan | ServingPlan,
             system: System) -> Estimate | ServingEstimate:
    """Estimate ``workload`` laid out by ``plan`` on ``system`` (see the module
    docstring); SpecError when the plan is not of the workload's kind."""
    entry = ESTIMATORS.get(type(workload))
    if entry is None:
        raise SpecError.one("argument", "workload", "expected one of "
                            + ", ".join(t.__name__ for t in ESTIMATORS),
                            type(workload).__name__)
    plan_type, run = entry
    if not isinstance(plan, plan_type):
        raise SpecError.one("argument", "plan", f"a {type(workload).__name__} takes a "
                                                f"{plan_type.__name__}", type(plan).__name__)
    result: Estimate | ServingEstimate = run(workload, plan, system)
    return result
