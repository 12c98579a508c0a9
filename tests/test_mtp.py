"""DeepSeek-V3's multi-token prediction modules in training (``ModelShape.mtp_depth``;
technical report §2.2): their parameters against the released checkpoint, their FLOPs
against the operators and against Megatron-Bridge's published model FLOPs, their place
in the pipeline split, their memory, and the validation's reading of the runs that
trained them."""

from __future__ import annotations

import csv
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import Infeasible, SpecError
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan, split_places, stage_layers
from ocplan.results.validation import ends_in_split, mtp_depth, shape_from_row
from ocplan.workloads.operators import (
    Shard,
    head_operators,
    layer_operators,
    layer_totals,
    mtp_operators,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
#: DeepSeek-V3's released checkpoint holds 685B parameters against the 671B of the main
#: model (deepseek-ai/DeepSeek-V3 README: "685B ... 671B of the Main Model weights and
#: 14B of the Multi-Token Prediction (MTP) Module weights"); the module's file carries
#: its own copies of the embedding and the output head, which training shares.
RELEASED_MTP_PARAMS = 14e9
#: Megatron-Bridge's published pre-training tables (docs/performance-summary-archive.md):
#: model TFLOP/s per GPU over tokens/s per GPU of DeepSeek-V3 at 4,096 tokens, with its
#: MTP module (26.04.01, DGX-GB300: 1,298 at 4,992) and without (25.11, DGX-GB300,
#: "DeepSeekV3 (w/o MTP)", FP8-MX: 1,088 at 4,357): FLOPs per trained token.
PUBLISHED_WITH_MTP = 1298e12 / 4992
PUBLISHED_WITHOUT_MTP = 1088e12 / 4357


@cache
def _deepseek() -> ModelShape:
    shape = ModelShape.from_arch(load_catalog().model("deepseek-v3"))
    assert shape.mtp_depth == 1
    return shape


def _without(shape: ModelShape) -> ModelShape:
    return replace(shape, mtp_depth=0)


def test_module_parameters_match_the_released_checkpoint() -> None:
    m = _deepseek()
    # the 671B the catalog checks stays the main model's
    assert m.total_params == _without(m).total_params
    own = m.mtp_dense_params + m.mtp_expert_params
    released = own + m.embedding_params + m.head_params  # the file's own copies
    assert released == pytest.approx(RELEASED_MTP_PARAMS, rel=0.05)
    # the routed experts of the module's MoE layer are most of it
    assert m.mtp_expert_params == m.moe_experts * m.expert_params


@pytest.mark.parametrize("tp", [1, 4])
def test_module_forward_flops_are_its_matmul_parameters(tp: int) -> None:
    m = _deepseek()
    shard = Shard(tp=tp, batch=2, seq_len=4096, sp=tp > 1)
    ops = mtp_operators(m, "forward", shard, "fp8")
    assert ops
    assert all(op.name.startswith("mtp1.") for op in ops)
    matmul = sum(float(op.flops) for op in ops
                 if op.kind in ("gemm", "grouped_gemm", "router"))
    tokens = 2 * 4096
    assert matmul == pytest.approx(2 * tokens * m.mtp_matmul_params_per_token / tp, rel=1e-9)
    # the module is one more layer like the last, the projection and the head again
    layer, _ = layer_totals(layer_operators(m, "forward", shard, layer=m.n_layers - 1,
                                            precision="fp8"))
    head, _ = layer_totals(head_operators(m, "forward", shard, "fp8"))
    total, _ = layer_totals(ops)
    proj = 2.0 * tokens * m.hidden * 2 * m.hidden / tp
    assert float(total) > float(layer) + float(head) + proj
    # backward and the serving phases
    assert len(mtp_operators(m, "backward", shard, "fp8")) > len(ops)
    assert mtp_operators(m, "prefill", Shard(tp=tp, batch=1, seq_len=512), "fp8") == ()
    assert mtp_operators(_without(m), "forward", shard, "fp8") == ()


def test_model_flops_add_what_megatron_bridge_publishes_for_the_module() -> None:
    m = _deepseek()
    with_mtp, without = Workload(m, 4096, 4096, "fp8"), Workload(_without(m), 4096, 4096, "fp8")
    added = with_mtp.model_flops_per_token - without.model_flops_per_token
    keys = 4096  # PaLM's full score matrix, as the model's own layers are counted
    attention = 6.0 * m.n_heads * (m.qk_dim + m.v_dim) * keys
    assert added == pytest.approx(6.0 * m.mtp_matmul_params_per_token + attention, rel=1e-12)
    # Megatron's formula counts causal attention; with the same count the increment is
    # the published tables' (10.3 GFLOP a token, 4 % of the step's)
    causal = added - attention / 2
    assert causal == pytest.approx(PUBLISHED_WITH_MTP - PUBLISHED_WITHOUT_MTP, rel=0.05)
    assert 1.0 < with_mtp.mfu_ceiling == pytest.approx(without.mfu_ceiling, rel=0.01)


def test_the_module_takes_a_place_in_the_pipeline_split() -> None:
    # 61 layers + embedding + MTP + loss = 64 places: 16 chunks of 4 (Megatron-Bridge's
    # DeepSeek-V3 layouts, "Et*4|(t*4|)*14tmL")
    assert split_places(61, 16, True, 1) == 64
    assert split_places(61, 16, True) == 63
    assert split_places(61, 16, False, 1) == 61
    assert stage_layers(61, 16, True, 1) == 4
    m = _deepseek()
    workload = Workload(m, 4096, 4096, "fp8")
    plan = Plan(pp=8, vpp=8, dp=32, ep=32, etp=1, ends_as_layers=True)
    plan.check(workload)
    with pytest.raises(Infeasible, match="with the embedding and the loss"):
        plan.check(Workload(_without(m), 4096, 4096, "fp8"))
    assert ends_in_split(61, 8, 2, 1)
    assert not ends_in_split(61, 8, 2)


def _step(shape: ModelShape, plan: Plan, chip: str = "b200", chips: int = 256) -> float:
    system = system_for_chip(load_catalog(), chip, chips)
    est = estimate(Workload(shape, 4096, 4096, "fp8"), plan, system)
    assert est.feasible, est.reason
    return est.step_s


def test_training_the_module_costs_its_compute_on_the_last_stage() -> None:
    m = _deepseek()
    plain = Plan(pp=8, dp=32, ep=32, etp=1, recompute="mla_up")
    slower = _step(m, plain) / _step(_without(m), plain) - 1.0
    added = Workload(m, 4096, 4096, "fp8").model_flops_per_token \
        / Workload(_without(m), 4096, 4096, "fp8").model_flops_per_token - 1.0
    # the last stage pays the module whole: more than its share of the model's FLOPs
    assert slower > added
    # with the ends counted the module runs in the place of a layer of that stage, so
    # training it costs less than without the place
    counted = replace(plain, vpp=2, ends_as_layers=True)
    assert _step(m, counted) / _step(_without(m), counted) - 1.0 < slower


def test_the_module_is_held_with_the_head() -> None:
    m = _deepseek()
    plan = Plan(tp=2, pp=1, dp=128, ep=64, etp=1, recompute="full")
    system = system_for_chip(load_catalog(), "gb300", 256)
    a = estimate(Workload(m, 4096, 4096, "fp8"), plan, system)
    b = estimate(Workload(_without(m), 4096, 4096, "fp8"), plan, system)
    assert a.memory is not None
    assert b.memory is not None
    # ZeRO-1: 2 bytes a parameter held, the module's dense part over tp and its routed
    # experts over ep x etp
    held = m.mtp_dense_params / 2 + m.mtp_expert_params / 64
    assert a.memory.weights_bytes - b.memory.weights_bytes == pytest.approx(2.0 * held)
    assert a.memory.activations_bytes > b.memory.activations_bytes


def test_shapes_refuse_what_is_not_modelled() -> None:
    m = _deepseek()
    with pytest.raises(SpecError, match="mtp_depth"):
        replace(m, mtp_depth=-1)
    for hybrid in ("nemotron-h-8b", "qwen3-next-80b-a3b"):  # a layer pattern, a mixer
        shape = ModelShape.from_arch(load_catalog().model(hybrid))
        with pytest.raises(SpecError, match="mtp_depth"):
            replace(shape, mtp_depth=1)
    # the catalog refuses the same, naming the field
    for hybrid in ("nemotron-h-8b", "qwen3-next-80b-a3b"):
        arch = load_catalog().model(hybrid)
        with pytest.raises(ValidationError, match="mtp_depth"):
            type(arch).model_validate(arch.model_dump() | {"mtp_depth": 1})
    assert np.isfinite(float(split_places(61, 1, True, 1)))


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_which_runs_trained_the_module() -> None:
    with DEV.open(encoding="utf-8") as handle:
        rows = {r["case_id"]: r for r in csv.DictReader(handle)}
    # Megatron-Bridge's DeepSeek-V3 runs (26.04.01 GB300 and B200, 25.09 H100)
    for case in ("R064", "R067", "R241"):
        assert mtp_depth(rows[case]) == 1, case
        assert shape_from_row(rows[case]).mtp_depth == 1
    # NeMo Automodel's and MaxText's DeepSeek-V3 runs name none; other models none
    for case in ("R242", "R243", "R208", "R069", "R235"):
        assert mtp_depth(rows[case]) == 0, case
    labelled = dict(rows["R064"], model="DeepSeekV3 (w/o MTP)")
    assert mtp_depth(labelled) == 0
