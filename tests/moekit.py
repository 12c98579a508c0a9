"""Jobs and a feasible-estimate helper shared by the tests of the plan's MoE switches
(``ep_overlap``, ``grouped_gemm``)."""

from __future__ import annotations

from pathlib import Path

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.plan.estimate import Estimate

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"

MOE = dict(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=16, global_batch=128,
           seq_len=4096, tp=2, ep=8)
DENSE = dict(model="llama3-8b", chip="h100-sxm-80gb", chips=8, global_batch=64, seq_len=4096,
             tp=2)


def estimate(job: dict[str, object], **layout: object) -> Estimate:
    """The estimate of ``job`` with ``layout`` fields; it must fit."""
    req = api.EstimateRequest.model_validate({**job, **layout})
    result, _, _ = api.run_estimate(load_catalog(), req)
    assert result.feasible, result.reason
    return result
