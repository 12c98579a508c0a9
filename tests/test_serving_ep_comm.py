"""What an expert-parallel MoE layer sends in serving
(:meth:`ocplan.serving.step.StepModel.comm_s`): an all-to-all only where the attention runs
data-parallel and the ranks hold different tokens; behind tensor-parallel attention every
rank already holds all of them and the MLP's all-reduce sums the experts' outputs."""

from __future__ import annotations

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.collectives.cost import moe_dispatch
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import StepModel, step_model, tp_all_reduce_s
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
ROWS = np.array([64.0, 2048.0, 8192.0])


def _step(plan: ServingPlan, model: str = "qwen3-235b-a22b") -> StepModel:
    wl = ServingWorkload(ModelShape.from_arch(CAT.model(model)), input_len=1000,
                         output_len=1000, weight_precision="fp8",
                         activation_precision="fp8", kv_precision="fp8")
    sm = system_model(system_for_chip(CAT, "b200", plan.chips))
    return step_model(wl, plan, sm, chip_peaks(sm, "bf16"), load_calibration(),
                      load_serving_calibration())


def test_tensor_parallel_attention_sends_no_tokens_to_its_experts() -> None:
    """TP 8 with the experts spread over the same 8 ranks (vLLM
    ``--enable-expert-parallel`` at one DP rank) costs the TP all-reduces alone, as TP 8
    with every expert split 8 ways does: two per layer of the full rows."""
    split = _step(ServingPlan(tp=8, ep=1))
    spread = _step(ServingPlan(tp=8, ep=8))
    np.testing.assert_allclose(spread.comm_s(ROWS), split.comm_s(ROWS), rtol=1e-12)
    shape = spread.workload.model
    per_layer = tp_all_reduce_s(spread.fabric, ROWS * shape.hidden * 2.0, 8)
    np.testing.assert_allclose(spread.comm_s(ROWS),
                               shape.blocks_per_layer * shape.n_layers * per_layer,
                               rtol=1e-9)


def test_data_parallel_attention_dispatches_and_combines() -> None:
    """DP attention over 8 ranks with EP 8: each MoE layer sends its rows' routed copies
    out (8-bit dispatch) and back (16-bit combine), and nothing is all-reduced."""
    step = _step(ServingPlan(tp=1, dp=8, ep=8, attention_dp=True))
    shape = step.workload.model
    h, k = float(shape.hidden), shape.moe_top_k
    per_layer = (np.asarray(moe_dispatch(step.fabric, ROWS, h * 1.0, k, 8))
                 + np.asarray(moe_dispatch(step.fabric, ROWS, h * 2.0, k, 8)))
    assert np.all(per_layer > 0)
    np.testing.assert_allclose(step.comm_s(ROWS), shape.n_moe_layers * per_layer, rtol=1e-9)


@pytest.mark.parametrize("ep", [2, 4, 8])
def test_spreading_experts_behind_tp_attention_never_adds_traffic(ep: int) -> None:
    """Whatever share of the TP ranks the experts are spread over, the traffic stays the
    TP all-reduces: a larger EP under TP attention is never charged a dispatch."""
    base = _step(ServingPlan(tp=8, ep=1)).comm_s(ROWS)
    assert np.all(_step(ServingPlan(tp=8, ep=ep)).comm_s(ROWS) <= base * (1 + 1e-12))
