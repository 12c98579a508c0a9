"""The embedding and the loss as pipeline-split places (``ends_as_layers``, Megatron-Core
``--account-for-embedding/loss-in-pipeline-split``; Llama 3 §3.3.2): one declaration in
the plan, the stage layer count and end credit it derives, and the published layouts it
makes possible (126 layers in 16 x 8 chunks)."""

from __future__ import annotations

import numpy as np
import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.costmodel.op_time import PassTime
from ocplan.errors import Infeasible
from ocplan.plan.compute_terms import head_charge
from ocplan.plan.estimate import Estimate
from ocplan.plan.plan import Plan, end_credit, stage_layers
from ocplan.results.validation import ends_in_split
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

LLAMA_405B = dict(model="llama3-405b", chip="gb200", chips=256, global_batch=1536,
                  seq_len=8192, precision="fp8", tp=4, pp=16, micro_batch=1,
                  recompute="full")
# Megatron-Bridge's H100 recipe: experts whole (etp 1), as its EP 32 on a stage of
# tp 2 x dp 16 requires.
QWEN_235B = dict(model="qwen3-235b-a22b", chip="h100-sxm-80gb", chips=256,
                 global_batch=8192, seq_len=4096, precision="fp8", tp=2, pp=8, vpp=4, ep=32,
                 etp=1, micro_batch=1, recompute="full")


def _estimate(job: dict[str, object], **layout: object) -> Estimate:
    req = api.EstimateRequest.model_validate({**job, **layout})
    result, _, _ = api.run_estimate(load_catalog(), req)
    return result


def test_stage_layers_counts_the_two_extra_places() -> None:
    # 126 + 2 = 128 places: 8 per stage of 16, the end stages hold 7 layers
    assert stage_layers(126, 16, True) == 8
    assert end_credit(16, True) == 1
    assert stage_layers(126, 16, False) == 8
    assert end_credit(16, False) == 0
    # 94 + 2 = 96 over 8 stages: 12 places; without, ceil(94 / 8) = 12 layers too
    assert stage_layers(94, 8, True) == 12
    # two stages are both end stages: (94 + 2) / 2 - 1 = 47 layers each, no credit
    assert stage_layers(94, 2, True) == 47
    assert end_credit(2, True) == 0
    assert stage_layers(95, 2, True) == 48  # ceil(97 / 2) - 1
    # one stage: nothing to split
    assert stage_layers(94, 1, True) == 94
    assert end_credit(1, True) == 0
    arr = stage_layers(126, np.array([1, 2, 8, 16]), np.array([True, True, False, True]))
    assert arr.tolist() == [126, 63, 16, 8]


def test_head_charge_is_what_the_head_exceeds_one_layer_by() -> None:
    def pt(total: float) -> PassTime:
        return PassTime(np.array([total * 0.7]), np.array([total * 0.2]),
                        np.array([total * 0.1]))

    layers, n = pt(8.0), np.array([8.0])  # 1 s per layer
    small, big = pt(0.6), pt(2.5)
    assert head_charge(layers, small, n, np.array([0.0])).total_s[0] == pytest.approx(0.6)
    assert head_charge(layers, small, n, np.array([1.0])).total_s[0] == pytest.approx(0.0)
    charged = head_charge(layers, big, n, np.array([1.0]))
    assert charged.total_s[0] == pytest.approx(1.5)
    # the categories keep the head's own split
    assert charged.matrix_s[0] == pytest.approx(1.5 * 0.7)


def test_published_405b_layout_fits_only_with_the_ends_counted() -> None:
    """Megatron-Bridge runs Llama 3.1 405B at pp=16, vpp=8 on GB200: 126 layers cannot
    fill 128 chunks, 126 + embedding + loss can."""
    arch = load_catalog().model("llama3-405b")
    workload = Workload(ModelShape.from_arch(arch), 8192, 1536, "fp8")
    with pytest.raises(Infeasible, match="126 layers cannot fill pp x vpp = 128 chunks; "
                       r"with the embedding and the loss counted as layers \(ends_as_layers\) "
                       "the 128 places would"):
        Plan(tp=4, pp=16, dp=4, vpp=8).check(workload)
    # where counting the ends would not fill them either, the reason does not offer it
    with pytest.raises(Infeasible, match=r"126 layers cannot fill pp x vpp = 144 chunks$"):
        Plan(tp=4, pp=16, dp=4, vpp=9).check(workload)
    Plan(tp=4, pp=16, dp=4, vpp=8, ends_as_layers=True).check(workload)
    with pytest.raises(Infeasible, match="with the embedding and the loss"):
        Plan(tp=4, pp=16, dp=4, vpp=65, ends_as_layers=True).check(workload)
    assert _estimate(LLAMA_405B, vpp=8, ends_as_layers=True).feasible
    assert not _estimate(LLAMA_405B, vpp=8).feasible


def test_a_small_head_stops_costing_the_slowest_stage() -> None:
    """Llama 3.1 405B's LM head is about two thirds of a layer: with the ends counted
    the slowest stage is a middle one of 8 layers instead of 8 layers and the head, and
    nothing else changes the compute."""
    on, off = _estimate(LLAMA_405B, vpp=4, ends_as_layers=True), _estimate(LLAMA_405B, vpp=4)
    assert on.feasible
    assert off.feasible
    assert on.time is not None
    assert off.time is not None
    assert on.time.compute_s < off.time.compute_s
    # the head's FLOPs are 2 h V per token against 24 h^2 + 4 h s (attention) for a layer
    # of Llama 3.1 405B: the saving is at most one eighth of the stage and more than nil
    assert on.time.compute_s > off.time.compute_s * (1 - 1 / 8)
    assert on.memory is not None
    assert off.memory is not None
    assert on.memory.activations_bytes <= off.memory.activations_bytes
    assert on.memory.weights_bytes <= off.memory.weights_bytes


def test_a_large_head_still_costs_its_excess_over_a_layer() -> None:
    """Qwen3-235B's LM head (vocab 151,936 x 4,096, bf16 path) outweighs one of its MoE
    layers: the slowest stage is an end stage of 11 layers and the head, one layer
    less than 12 layers and the head."""
    on, off = _estimate(QWEN_235B, ends_as_layers=True), _estimate(QWEN_235B)
    assert on.time is not None
    assert off.time is not None
    saved = off.time.compute_s - on.time.compute_s
    assert saved > 0
    # one layer of the twelve (recompute full repeats its forward): close to 1/12 of the
    # layers' share of the compute, well below what dropping the head would save
    layers_share = off.time.compute_s * 12 / (12 + 2.5)
    assert saved == pytest.approx(layers_share / 12, rel=0.35)


def test_validation_reads_the_split_from_the_layout() -> None:
    assert ends_in_split(126, 16, 1)        # Llama 3 405B, pp 16
    assert ends_in_split(126, 8, 8)         # 128 chunks
    assert ends_in_split(94, 4, 12)         # Qwen3-235B, 48 chunks
    assert not ends_in_split(96, 8, 1)      # even without the ends
    assert not ends_in_split(61, 8, 2)      # DeepSeek-V3: its own layout string
    assert not ends_in_split(126, 1, 1)


def test_the_declaration_reaches_the_api_the_label_and_the_cli() -> None:
    assert "ends_as_layers" in api.EstimateRequest.model_fields
    assert any(f["name"] == "ends_as_layers" for f in api.layout_fields())
    assert "ends=on" in Plan(pp=2, ends_as_layers=True).label()
    assert "ends" not in Plan(pp=1, ends_as_layers=True).label()  # idle without stages
