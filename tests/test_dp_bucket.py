"""The last gradient bucket (``ocplan.plan.comm_terms.last_bucket_share``): an overlapped
data-parallel reduction is launched bucket by bucket as the backward produces gradients,
so however long the backward, one bucket's traffic stays on the critical path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.comm_terms import BUCKET_MIN_PARAMS, BUCKET_PARAMS_PER_RANK
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.plan import Plan
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
CAL = load_calibration()
LLAMA8 = ModelShape.from_arch(CAT.model("llama3-8b"))
#: One 8-GPU server: DP over NVLink, so the reduction fits in the last backward.
H100 = system_for_chip(CAT, "h100-sxm-80gb", 8)
H100_512 = system_for_chip(CAT, "h100-sxm-80gb", 512)


def _dp_s(plan: Plan, system: object = H100, **values: float) -> float:
    wl = Workload(LLAMA8, 4096, plan.dp * plan.micro_batch * 4, "bf16")
    e: Estimate = estimate(wl, plan, system, CAL.with_values(**values))  # type: ignore[arg-type]
    assert e.feasible, e.reason
    assert e.time is not None
    return e.time.dp_comm_s


def test_a_full_overlap_leaves_one_bucket_exposed() -> None:
    """With every gradient hideable (overlap 1, a backward longer than the traffic), the
    exposed share is the bucket over the parameters a chip holds: 40M of Llama 3 8B's
    parameters at DP 8, since 1M x 8 is below Megatron's 40M floor."""
    plan = Plan(tp=1, pp=1, dp=8, micro_batch=2, zero=1, recompute="full")
    exposed_all = _dp_s(replace(plan, dp_overlap=False))
    hidden = _dp_s(plan, dp_overlap=1.0)
    assert exposed_all > 0
    share = BUCKET_MIN_PARAMS / LLAMA8.total_params
    assert hidden == pytest.approx(share * exposed_all, rel=1e-3)


def test_the_bucket_grows_with_the_data_parallel_ranks() -> None:
    """Above 40 ranks the bucket is 1M parameters per rank (Megatron's default), so the
    exposed tail of a fully overlapped ZeRO-1 step grows with DP, faster than the ring's
    own traffic per chip (which tends to a constant)."""
    def tail(dp: int) -> float:
        plan = Plan(tp=1, pp=1, dp=dp, micro_batch=2, zero=1, recompute="full")
        return _dp_s(plan, H100_512, dp_overlap=1.0)

    small, large = tail(32), tail(256)
    assert large > small
    assert BUCKET_PARAMS_PER_RANK * 256 > BUCKET_MIN_PARAMS > BUCKET_PARAMS_PER_RANK * 32
    assert large / small > 1.5


def test_one_replica_has_no_data_parallel_traffic() -> None:
    """The tail is a share of the DP traffic; with DP 1 there is none to expose."""
    plan = Plan(tp=8, pp=1, dp=1, micro_batch=1, zero=1, recompute="full")
    assert _dp_s(plan, dp_overlap=1.0) == 0.0
