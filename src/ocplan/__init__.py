"""ocplan: a digital twin of open-standard (OCP OAM/UBB/OCM) AI systems.

The public API::

    from ocplan import load_catalog, system_for_chip, ModelShape, Workload, Plan, estimate

    cat = load_catalog()
    system = system_for_chip(cat, "h100-sxm-80gb", 64)
    wl = Workload(ModelShape.from_arch(cat.model("llama3-70b")), 8192, 128, "fp8")
    result = estimate(wl, Plan(tp=4, pp=4, dp=2, cp=2, vpp=5), system)
    result.tokens_per_s_per_chip, result.mfu, result.time, result.memory

    served = estimate(ServingWorkload(wl.model, input_len=2000, output_len=500,
                                      weight_precision="fp8", activation_precision="fp8"),
                      ServingPlan(tp=8, dp=8), system)
    served.output_tokens_per_s_per_chip, served.ttft_s, served.tpot_s, served.bound

    sensitivity(wl, Plan(tp=4, pp=4, dp=2, cp=2, vpp=5), system).summary()
    # 'matrix-unit peak (every precision) x2 makes the step 37% shorter; ...'
    sensitivity(ServingWorkload(wl.model, input_len=2000, output_len=500),
                ServingPlan(tp=8, dp=8), system).summary()
    # 'matrix-unit peak (every precision) x2 raises output tokens/s per chip ...'
"""

from typing import TYPE_CHECKING

from ocplan.lazy import lazy_names

if TYPE_CHECKING:
    from ocplan.catalog.catalog import Catalog, load_catalog
    from ocplan.catalog.system import System, load_system, system_for_chip
    from ocplan.checks.rules import Finding, run_rules
    from ocplan.errors import Infeasible, OcplanError, SpecError
    from ocplan.estimators import estimate, sensitivity
    from ocplan.plan.estimate import Estimate
    from ocplan.plan.plan import Plan
    from ocplan.plan.search import SearchResult, search
    from ocplan.plan.sensitivity import Sensitivity
    from ocplan.serving.estimate import ServingEstimate
    from ocplan.serving.plan import ServingPlan
    from ocplan.serving.sensitivity import ServingSensitivity
    from ocplan.version import __version__
    from ocplan.workloads.serving import ServingWorkload
    from ocplan.workloads.shape import ModelShape
    from ocplan.workloads.workload import Workload

# Importing ``ocplan`` must stay cheap: every ``ocplan.x.y`` import runs this file first,
# and a command such as ``ocplan match`` needs neither the training engine nor networkx.
# The public names are therefore resolved on first use (PEP 562).
_PUBLIC: dict[str, str] = {
    "Catalog": "ocplan.catalog.catalog",
    "load_catalog": "ocplan.catalog.catalog",
    "System": "ocplan.catalog.system",
    "load_system": "ocplan.catalog.system",
    "system_for_chip": "ocplan.catalog.system",
    "Finding": "ocplan.checks.rules",
    "run_rules": "ocplan.checks.rules",
    "Infeasible": "ocplan.errors",
    "OcplanError": "ocplan.errors",
    "SpecError": "ocplan.errors",
    "estimate": "ocplan.estimators",
    "Estimate": "ocplan.plan.estimate",
    "Plan": "ocplan.plan.plan",
    "SearchResult": "ocplan.plan.search",
    "search": "ocplan.plan.search",
    "Sensitivity": "ocplan.plan.sensitivity",
    "sensitivity": "ocplan.estimators",
    "ServingEstimate": "ocplan.serving.estimate",
    "ServingPlan": "ocplan.serving.plan",
    "ServingSensitivity": "ocplan.serving.sensitivity",
    "ServingWorkload": "ocplan.workloads.serving",
    "ModelShape": "ocplan.workloads.shape",
    "Workload": "ocplan.workloads.workload",
    "__version__": "ocplan.version",
}


__getattr__ = lazy_names("ocplan", _PUBLIC, globals())


__all__ = [
    "Catalog",
    "Estimate",
    "Finding",
    "Infeasible",
    "ModelShape",
    "OcplanError",
    "Plan",
    "SearchResult",
    "Sensitivity",
    "ServingEstimate",
    "ServingPlan",
    "ServingSensitivity",
    "ServingWorkload",
    "SpecError",
    "System",
    "Workload",
    "__version__",
    "estimate",
    "load_catalog",
    "load_system",
    "run_rules",
    "search",
    "sensitivity",
    "system_for_chip",
]
