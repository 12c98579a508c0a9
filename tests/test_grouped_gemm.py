"""Grouped expert GEMMs or one kernel per expert (``grouped_gemm``; Megatron-Core
``--moe-grouped-gemm`` against ``SequentialMLP``, Primus' legacy grouped GEMM on ROCm):
one declaration in the plan gives the operators' flag, the cost model's term, the API
field and the validation reading."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from moekit import DENSE, DEV, MOE, estimate
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.gemm import gemm_cost
from ocplan.costmodel.op_time import ChipPeaks, gemm_op_cost, kernel_groups, profile
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.results.validation import plan_from_row, shape_from_row
from ocplan.workloads.operators import GEMM_INPUT_BYTES, Operator, Shard, layer_operators
from ocplan.workloads.shape import ModelShape


def _chip(name: str = "mi355x") -> ChipPeaks:
    sm = system_model(system_for_chip(load_catalog(), name, 8, "test"))
    return chip_peaks(sm, "bf16")


def _experts(m: float, groups: float, one_by_one: float) -> Operator:
    """DeepSeek-V2's expert up projection with ``groups`` local experts of ``m`` rows."""
    n, k = 2 * 1536.0, 5120.0
    b = GEMM_INPUT_BYTES["bf16"]
    return Operator(name="experts_up", kind="grouped_gemm", precision="bf16",
                    flops=2 * groups * m * n * k,
                    bytes_read=groups * (m * k + k * n) * b, bytes_written=groups * m * n * 2,
                    m=m, n=n, k=k, groups=groups, m_max=m, weight_groups=groups,
                    one_by_one=one_by_one)


def test_kernel_groups_splits_the_groups_into_kernels_in_turn() -> None:
    kernel, turns, wg = kernel_groups(np.array([20.0, 20.0]), np.array([20.0, 10.0]),
                                      np.array([0.0, 1.0]))
    assert kernel.tolist() == [20.0, 1.0]
    assert turns.tolist() == [1.0, 20.0]
    assert wg.tolist() == [20.0, 0.5]


def test_one_kernel_per_expert_costs_each_expert_alone_in_turn() -> None:
    """G kernels of one expert's shape: G x the single-expert GEMM, term by term."""
    chip = _chip()
    alone = gemm_op_cost(_experts(1229.0, 20.0, 1.0), chip)
    one = gemm_cost(1229.0, 3072.0, 5120.0, 1.0, chip.peak_of("bf16"), chip.hbm_Bps,
                    chip.compute, 2.0, 2.0, 1.0, 0.0)
    assert float(alone.compute_s) == pytest.approx(20 * float(one.compute_s), rel=1e-12)
    assert float(alone.memory_s) == pytest.approx(20 * float(one.memory_s), rel=1e-12)


@pytest.mark.parametrize("chip_name", ["mi355x", "h100-sxm-80gb", "b200"])
@pytest.mark.parametrize("m", [64.0, 700.0, 1229.0, 4096.0])
def test_one_kernel_per_expert_is_never_faster_than_one_grouped_kernel(
        chip_name: str, m: float) -> None:
    """The grouped kernel fills the chip with every expert's tiles at once; alone, each
    expert leaves the units its tiles do not cover idle (or splits K), never better."""
    chip = _chip(chip_name)
    grouped = gemm_op_cost(_experts(m, 20.0, 0.0), chip)
    alone = gemm_op_cost(_experts(m, 20.0, 1.0), chip)
    assert float(alone.compute_s) >= float(grouped.compute_s) * (1 - 1e-12)
    assert float(alone.memory_s) == pytest.approx(float(grouped.memory_s), rel=1e-12)


def test_the_batched_profile_matches_the_single_operator_cost() -> None:
    """:func:`profile` costs GEMMs together in one array call; per expert or grouped, it
    must give what :func:`gemm_op_cost` gives one operator at a time."""
    chip = _chip()
    ops = [_experts(1229.0, 20.0, 0.0), _experts(1229.0, 20.0, 1.0), _experts(300.0, 5.0, 1.0)]
    batched = profile(ops, chip, 1)
    for i, op in enumerate(ops):
        single = gemm_op_cost(op, chip)
        assert batched.compute_s[i, 0] == pytest.approx(float(single.compute_s), rel=1e-12)
        assert batched.memory_s[i, 0] == pytest.approx(float(single.memory_s), rel=1e-12)


def test_the_shard_flag_reaches_only_the_expert_gemms() -> None:
    shape = ModelShape(name="moe", n_layers=2, hidden=2048, n_heads=16, n_kv_heads=16,
                       head_dim=128, ffn=8192, mlp_mats=3, vocab=32000, moe_experts=16,
                       moe_top_k=2, moe_ffn=1024)
    for phase in ("forward", "backward"):
        ops = layer_operators(shape, phase, Shard(tp=1, batch=1, seq_len=4096, ep=4,
                                                  grouped_gemm=np.array([True, False])),
                              layer=1, precision="bf16")
        flagged = {op.name for op in ops if np.any(np.asarray(op.one_by_one) > 0)}
        experts = {op.name for op in ops if op.kind == "grouped_gemm"}
        assert experts
        assert flagged == experts
        for op in ops:
            if op.kind == "grouped_gemm":
                assert np.asarray(op.one_by_one).tolist() == [0.0, 1.0]


def test_a_moe_run_with_one_kernel_per_expert_is_slower_and_labelled() -> None:
    # 4 of Mixtral's 8 experts per chip, on a chip whose GEMMs run in waves (Hopper's
    # stream-K kernels have no wave staircase, so there the two are equal)
    four_local = dict(MOE, chip="a100-sxm-80gb", ep=2, zero=3)
    grouped, alone = estimate(four_local), estimate(four_local, grouped_gemm=False)
    assert alone.step_s > grouped.step_s
    assert "grouped_gemm" in alone.plan.label()
    assert "grouped_gemm" not in grouped.plan.label()


def test_one_local_expert_is_the_same_either_way() -> None:
    """ep = 8 leaves one of Mixtral's 8 experts per chip: one kernel either way."""
    assert estimate(MOE, grouped_gemm=False).step_s == pytest.approx(
        estimate(MOE).step_s, rel=1e-12)


#: The plan's MoE execution switches (on by default; off only ever costs more).
MOE_SWITCHES = ("ep_overlap", "grouped_gemm")


@pytest.mark.parametrize("switch", MOE_SWITCHES)
def test_a_dense_model_does_not_care(switch: str) -> None:
    assert estimate(DENSE, **{switch: False}).step_s == pytest.approx(
        estimate(DENSE).step_s, rel=1e-12)


@pytest.mark.parametrize("switch", MOE_SWITCHES)
def test_the_declaration_reaches_the_api_and_the_search_keeps_it_on(switch: str) -> None:
    assert switch in api.EstimateRequest.model_fields
    assert any(f["name"] == switch for f in api.layout_fields())
    req = api.SearchRequest(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=16,
                            global_batch=128, seq_len=4096, top_k=3)
    found = api.run_search(load_catalog(), req)
    assert found.top
    assert all(getattr(e.plan, switch) for e in found.top)
    if switch == "ep_overlap":  # an axis, pruned as dominated; grouped_gemm is held fixed
        assert found.pruned["dominated"] > 0


@pytest.mark.parametrize("switch", MOE_SWITCHES)
def test_a_primus_baseline_row_runs_with_the_switch_off(switch: str) -> None:
    """R204's notes: "baseline, 1F1B schedule, no Primus-Turbo/DeepEP features": no
    DeepEP overlap, and the baseline YAML sets ``moe_use_legacy_grouped_gemm: true`` (one
    hipBLASLt GEMM per expert); R207, the same source's run with Primus-Turbo and DeepEP,
    has both on, as have notes that say nothing."""
    rows = {r["case_id"]: r
            for r in csv.DictReader(DEV.read_text(encoding="utf-8").splitlines())}
    base, turbo = rows["R204"], rows["R207"]
    quiet = dict(base, measured_from="reported_tps: tokens/s/GPU")
    assert [getattr(plan_from_row(r, shape_from_row(r)), switch)
            for r in (base, turbo, quiet)] == [False, True, True]
