"""Expert dispatch: node-deduplicated (DeepEP, HybridEP) or a plain all-to-all, and the
1F1B overlap that pairs a micro-batch's forward all-to-alls with another's backward.

``ep_overlap`` had meant both DeepEP-style deduplication and the overlap; Megatron-Bridge's
Qwen3-235B recipe on 256 H100 (R069) overlaps a plain alltoall dispatcher, which sends
every routed copy over InfiniBand. ``ep_dedup`` is the dispatch, declared once.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import Calibration, load_calibration
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import LAYOUT_FIELDS, Plan
from ocplan.results.validation import (
    megatron_bridge_release,
    plan_from_row,
    predict_prepared,
    prepare_row,
    read_cases,
    shape_from_row,
)
from ocplan.workloads.operators import Operator, Shard, layer_operators
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
QWEN = Workload(ModelShape.from_arch(CAT.model("qwen3-235b-a22b")), 4096, 2048, "fp8")


def ep_comm(plan: Plan, chips: int, chip: str = "h100-sxm-80gb",
            cal: Calibration | None = None) -> float:
    est = estimate(QWEN, plan, system_for_chip(CAT, chip, chips), cal)
    assert est.feasible, est.reason
    return est.time.ep_comm_s


@pytest.mark.parametrize("overlap", [True, False])
def test_a_plain_all_to_all_costs_more_only_across_domains(overlap: bool) -> None:
    across = Plan(tp=2, pp=8, dp=16, ep=32, etp=1, ep_overlap=overlap)
    dedup, plain = ep_comm(across, 256), ep_comm(replace(across, ep_dedup=False), 256)
    # 32 ranks over 4 eight-GPU nodes: a token's 8 copies reach 2.7 other nodes on
    # average, once each when deduplicated, 6 times (8 x 24 / 32) when not
    assert plain > 1.5 * dedup
    # the same group inside one GB200 NVL72 domain crosses no scale-out link
    inside = Plan(tp=1, pp=8, dp=8, ep=8, ep_overlap=overlap)
    assert ep_comm(replace(inside, ep_dedup=False), 64, "gb200") == pytest.approx(
        ep_comm(inside, 64, "gb200"), rel=1e-12)


def test_the_overlap_hides_each_half_behind_the_other_phase() -> None:
    """Overlapped, a plain dispatch over InfiniBand (EP 64 over eight nodes) outgrows the
    forward compute it hides behind (the backward's all-to-alls run under another
    micro-batch's forward, a third of its compute), so part of it shows; deduplicated,
    it all hides but the calibrated share's remainder. The share at its bound (0.95), so
    the window, not the fitted share, decides what shows."""
    cal = load_calibration().with_values(ep_overlap=0.95)
    plan = Plan(tp=2, pp=4, dp=32, ep=64, etp=1, ep_dedup=False)
    shown = ep_comm(plan, 256, cal=cal)
    inline = ep_comm(replace(plan, ep_overlap=False), 256, cal=cal)
    assert 0.0 < shown < inline
    deduplicated = ep_comm(replace(plan, ep_dedup=True), 256, cal=cal)
    deduplicated_inline = ep_comm(replace(plan, ep_dedup=True, ep_overlap=False), 256,
                                  cal=cal)
    assert deduplicated / deduplicated_inline < shown / inline


def test_the_field_is_declared_once_and_the_search_keeps_the_deduplicated_dispatch() -> None:
    field = next(f for f in LAYOUT_FIELDS if f.name == "ep_dedup")
    assert field.default is True
    assert field.search == "fixed"
    assert "ep_dedup=off" in Plan(ep=8, ep_dedup=False).label()
    assert "ep_dedup" not in Plan(ep=1, ep_dedup=False).label()  # idle without experts


@cache
def _dev_rows() -> dict[str, dict[str, str]]:
    return {r["case_id"]: r for r in read_cases(DEV)}


def plan(case: str) -> Plan:
    """The plan the validation reads from development row ``case``."""
    row = _dev_rows()[case]
    return plan_from_row(row, shape_from_row(row))


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_the_dispatcher() -> None:
    # Megatron-Bridge Qwen3-235B on H100: alltoall dispatcher, overlapped
    assert not plan("R069").ep_dedup
    assert plan("R069").ep_overlap
    # its GB200 recipe dispatches with HybridEP
    assert plan("R232").ep_dedup
    # DeepSeek-V3's recipes dispatch with HybridEP
    assert plan("R067").ep_dedup
    # Primus without DeepEP: neither
    assert not plan("R204").ep_dedup
    assert not plan("R204").ep_overlap
    # GPT-OSS 120B's 26.04.01 presets name no flex backend on GB300 and GB200 (alltoall);
    # B300's names HybridEP
    for case in ("R226", "R227"):
        assert not plan(case).ep_dedup, case
    assert plan("R228").ep_dedup
    # Qwen3-235B on B300: HybridEP from 26.04.01 on
    assert plan("R233").ep_dedup


def _at_release(case: str, release: str) -> Plan:
    """The plan of development row ``case`` had its table named ``release``."""
    row = dict(_dev_rows()[case])
    assert "'26.04.01 NeMo Container'" in row["source"], row["source"]
    row["source"] = row["source"].replace("26.04.01 NeMo", f"{release} NeMo")
    return plan_from_row(row, shape_from_row(row))


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_dispatcher_follows_the_rows_release() -> None:
    # B300's Qwen3-235B recipe ran alltoall up to 26.04, HybridEP after (#3675)
    assert megatron_bridge_release(_dev_rows()["R233"]) == (26, 4, 1)
    assert not _at_release("R233", "26.04").ep_dedup
    assert not _at_release("R233", "26.02.01").ep_dedup
    assert _at_release("R233", "26.06").ep_dedup
    # GPT-OSS on B300: HybridEP at EP 8 from 26.02.01, alltoall at EP 64 in 26.02
    assert _at_release("R228", "26.02.01").ep_dedup
    assert not _at_release("R228", "26.02").ep_dedup
    # GPT-OSS on GB200: HybridEP in 26.04 alone; its MXFP8 preset from 26.06 on
    assert _at_release("R227", "26.04").ep_dedup
    assert not _at_release("R227", "26.02.01").ep_dedup
    assert not _at_release("R227", "26.06").ep_dedup
    fp8 = dict(_dev_rows()["R227"], precision="fp8")
    fp8["source"] = fp8["source"].replace("26.04.01 NeMo", "26.06 NeMo")
    assert plan_from_row(fp8, shape_from_row(fp8)).ep_dedup
    # H100's Qwen3-235B recipe stays alltoall whatever the release
    assert not _at_release("R069", "26.06").ep_dedup
    # a row of another source is never read from these recipes
    other = dict(_dev_rows()["R233"], source="a blog post, '26.04 NeMo Container'")
    assert megatron_bridge_release(other) is None
    assert plan_from_row(other, shape_from_row(other)).ep_dedup


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_the_recipes_recompute_where_the_row_states_none() -> None:
    rows = _dev_rows()
    # GPT-OSS 120B recomputes layer norms and expert activations on GB200, not on GB300
    assert plan("R227").recompute == "norm_act"
    assert plan("R226").recompute == "none"
    assert plan("R228").recompute == "none"
    # a recompute the row states wins over the table
    stated = dict(rows["R227"], recompute="full")
    assert plan_from_row(stated, shape_from_row(stated)).recompute == "full"
    # where the recipe's mode does not fit (25.11's GPT-OSS preset on 64 H100 at
    # micro-batch 4, docs/release-spread.md), the fitting rule still finds a layout:
    # whole layers, counted from the memory without any recompute
    h100 = dict(rows["R227"], chip="h100-sxm-80gb", chips_per_node="8", scale_out="",
                pp="4", ep="8", dp="16", micro_batch="4", global_batch="512")
    prepared = prepare_row(h100, CAT)
    assert prepared.plan.recompute == "norm_act"
    assert not estimate(prepared.workload, prepared.plan, prepared.system).feasible
    est = predict_prepared(prepared)
    assert est.feasible, est.reason
    assert est.plan.recompute == "full"
    assert est.plan.recompute_layers is not None
    assert est.memory is not None
    assert est.memory.total_bytes <= est.memory.capacity_bytes


def _moe_ops(dedup: bool) -> dict[str, Operator]:
    shard = Shard(tp=1, batch=2, seq_len=4096, ep=32, etp=1, ep_dedup=dedup)
    ops = layer_operators(QWEN.model, "forward", shard, layer=3, precision="fp8")
    return {op.name: op for op in ops}


def test_a_fused_dispatch_permutes_only_on_the_receiving_side() -> None:
    """DeepEP/HybridEP read the tokens where they are and land them on the expert's rank:
    the sender's permute of every routed copy (and the unpermute after the combine) are
    gone, the receiver's sort into local-expert order stays. Balanced routing: the chip
    receives as many copies as it sends, ``T k``."""
    fused, plain = _moe_ops(True), _moe_ops(False)
    h, copies = QWEN.model.hidden, 2 * 4096 * QWEN.model.moe_top_k
    row_bytes = 2 * h  # 16-bit rows
    assert fused["dispatch"].bytes_read == pytest.approx(copies * row_bytes)
    assert fused["dispatch"].bytes_written == pytest.approx(copies * row_bytes)
    assert plain["dispatch"].bytes_read == pytest.approx(2 * copies * row_bytes)
    # the plain combine also scatters every copy back into its token's row
    assert plain["combine"].bytes_written == pytest.approx((copies + 2 * 4096) * row_bytes)
    assert fused["combine"].bytes_written == pytest.approx(copies * row_bytes)
    # the same expert work either way
    for name in ("experts_up", "experts_down", "router"):
        assert fused[name].flops == plain[name].flops
    assert fused["combine"].flops == plain["combine"].flops


def test_the_fused_dispatch_is_never_slower() -> None:
    plan = Plan(tp=1, pp=8, dp=32, ep=32, etp=1)
    fused = estimate(QWEN, plan, system_for_chip(CAT, "gb200", 256))
    plain = estimate(QWEN, replace(plan, ep_dedup=False), system_for_chip(CAT, "gb200", 256))
    assert fused.feasible
    assert plain.feasible
    assert fused.time.compute_s < plain.time.compute_s
    assert fused.time.ep_comm_s == pytest.approx(plain.time.ep_comm_s, rel=1e-12)
